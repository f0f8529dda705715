"""Meta Custom Audiences: `POST` / `DELETE /{audience_id}/users` on the Graph API.

Members go as a multi-key schema (EMAIL, PHONE, FN, LN, CT, ST, ZIP, COUNTRY, MADID,
EXTERN_ID, GEN, DOBY, DOBM, DOBD), normalised and SHA-256-hashed per Meta's rules (MADID and EXTERN_ID unhashed),
at most 10,000 rows per request, all requests of one run in one upload session
(`session_id`, `batch_seq`, `last_batch_flag`, `estimated_num_total`).
Graph errors are classified by their `code`, not the HTTP status (Meta sends throttling
as 400/403): throttling and transient codes are backed off, 190 and permission codes are a
configuration error, anything else is fatal for the batch.
"""
from __future__ import annotations

import hashlib
import hmac
import json
from typing import Iterable, Sequence

from ..base import AudienceConnector, BatchInfo, url
from ..errors import ConfigurationError, FatalError, RetriableError, SkipRecipient
from ..hashing import meta_value
from ..model import Member, Result
from ..net import provider_url
from ..policy import meta_usage_wait, retry_after_seconds
from ..settings import connector_schema, secret

# Schema key -> Member field.
KEY_FIELDS = {"EMAIL": "email", "PHONE": "phone", "FN": "first_name", "LN": "last_name",
              "CT": "city", "ST": "state", "ZIP": "zip", "COUNTRY": "country", "MADID": "madid",
              "EXTERN_ID": "extern_id", "GEN": "gender", "DOBY": "date_of_birth",
              "DOBM": "date_of_birth", "DOBD": "date_of_birth"}
THROTTLING = {4, 17, 32, 341, 613} | set(range(80000, 80015))
TRANSIENT = {1, 2}
CONFIGURATION = {3, 10, 102, 190} | set(range(200, 300))
# The Graph API host (https://developers.facebook.com/docs/graph-api/overview).
HOSTS = ["graph.facebook.com"]


class MetaCustomAudience(AudienceConnector):
    name = "meta_custom_audience"
    channel = "ads"
    batch_size = 10_000
    settings_schema = connector_schema("Meta Custom Audiences", {
        "access_token": secret({"type": "string", "minLength": 1,
                                "title": "System user access token (ads_management)"}),
        "app_secret": secret({"type": "string", "title": "App secret (adds appsecret_proof)"}),
        "graph_base_url": provider_url(HOSTS, default="https://graph.facebook.com/v25.0",
                                       title="Graph API base URL, with version"),
        "schema_keys": {"type": "array", "items": {"enum": list(KEY_FIELDS)}, "minItems": 1,
                        "uniqueItems": True, "default": list(KEY_FIELDS),
                        "title": "Identifier keys to upload"},
    }, required=["access_token"])

    def _auth(self) -> dict:
        call = {"headers": {"Authorization": f"Bearer {self.settings['access_token']}"}}
        if self.settings.get("app_secret"):
            proof = hmac.new(self.settings["app_secret"].encode(),
                             self.settings["access_token"].encode(), hashlib.sha256).hexdigest()
            call["params"] = {"appsecret_proof": proof}
        return call

    def check(self) -> None:
        response = self._check_call("GET", url(self.settings["graph_base_url"], "/me"), **self._auth())
        if not response.ok:
            self._raise_graph_error(response)

    def prepare(self, member: Member) -> None:
        if not any(getattr(member, KEY_FIELDS[k]) for k in self.settings["schema_keys"]):
            raise SkipRecipient("no_identifiers")

    def add(self, audience_id: str, members: Sequence[Member]) -> list[Result]:
        return self._sync(audience_id, members, "POST")

    def remove(self, audience_id: str, members: Sequence[Member]) -> list[Result]:
        return self._sync(audience_id, members, "DELETE")

    def _sync(self, audience_id: str, members: Sequence[Member], method: str) -> list[Result]:
        # One session per run; derived from its content so a rerun of the same run matches.
        digest = hashlib.sha256("\n".join([audience_id, method, *(m.key for m in members)]).encode())
        session_id = int.from_bytes(digest.digest()[:8], "big") >> 1
        return self.deliver(members, lambda batch, info: self._upload(
            audience_id, batch, info, method, session_id))

    def _upload(self, audience_id: str, batch: list[Member], info: BatchInfo, method: str,
                session_id: int) -> Iterable[Result]:
        keys = [k for k in self.settings["schema_keys"]
                if any(meta_value(k, getattr(m, KEY_FIELDS[k]), m.country) for m in batch)]
        rows = [[meta_value(k, getattr(m, KEY_FIELDS[k]), m.country) for k in keys] for m in batch]
        body = {"payload": {"schema": keys, "data": rows},
                "session": {"session_id": session_id, "batch_seq": info.index,
                            "last_batch_flag": info.index == info.count,
                            "estimated_num_total": info.total_items}}
        auth = self._auth()
        response = self.request(method, url(self.settings["graph_base_url"], f"/{audience_id}/users"),
                                headers={**auth["headers"], "Content-Type": "application/json"},
                                params=auth.get("params"), data=json.dumps(body))
        if not response.ok:
            self._raise_graph_error(response)
        answer = response.json()
        provider_id = str(answer.get("session_id") or session_id)
        return [Result.sent(m.key, provider_id) for m in batch]

    def _raise_graph_error(self, response) -> None:
        error = _graph_error(response)
        if not error:
            self.raise_for_status(response)
            return
        code = error.get("code")
        reason = self.error_detail(response)
        if code in THROTTLING or code in TRANSIENT or error.get("is_transient"):
            wait = meta_usage_wait(response.headers) or retry_after_seconds(response.headers,
                                                                            self.wall_clock())
            raise RetriableError(reason, retry_after=wait)
        if code in CONFIGURATION:
            raise ConfigurationError(reason)
        raise FatalError(reason)

    def error_detail(self, response) -> str:
        error = _graph_error(response)
        if not error:
            return super().error_detail(response)
        return self.redact(f"graph_{error.get('code')}/{error.get('error_subcode')}: "
                           f"{error.get('message', '')} (fbtrace_id {error.get('fbtrace_id')})"[:300])


def _graph_error(response) -> dict:
    try:
        body = response.json()
    except ValueError:
        return {}
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}
