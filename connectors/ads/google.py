"""Google Customer Match through the Data Manager API.

`POST /v1/audienceMembers:ingest` and `POST /v1/audienceMembers:remove`, at most 10,000
members per request, hex-encoded SHA-256 identifiers normalised per Google's rules (email
without whitespace, lowercase, gmail/googlemail dots removed; phone in E.164 with '+').
A 400 whose field violations name `audience_members[N]` fails only member N; the others,
never ingested, are resent. One request carries one data type: Data Manager refuses a request
mixing `userData` and `mobileData` members as a whole (MULTIPLE_DATA_TYPES_NOT_ALLOWED,
https://developers.google.com/data-manager/api/reference/rest/v1/ErrorReason), so a batch is
sent as one request per data type, each settled on its own.
"""
from __future__ import annotations

import json
import re
from typing import Iterable

from ..base import AudienceConnector, BatchInfo, url
from ..errors import ConfigurationError, ConnectorError, FatalError, RetriableError, SkipRecipient
from ..google_auth import TOKEN_URI, ServiceAccountToken, google_rpc_error, request_with_token
from ..hashing import google_hash
from ..model import Member, Result
from ..net import provider_url
from ..settings import connector_schema, secret

SCOPE = "https://www.googleapis.com/auth/datamanager"
ACCOUNT_TYPES = ["GOOGLE_ADS", "DISPLAY_VIDEO_ADVERTISER", "DISPLAY_VIDEO_PARTNER", "DATA_PARTNER"]
CONSENT = ["CONSENT_GRANTED", "CONSENT_DENIED"]
_MEMBER_INDEX = re.compile(r"audience_members\[(\d+)\]")


class GoogleCustomerMatch(AudienceConnector):
    name = "google_customer_match"
    channel = "ads"
    batch_size = 10_000
    settings_schema = connector_schema("Google Customer Match (Data Manager API)", {
        "service_account_json": secret({"type": "string", "minLength": 2,
                                        "title": "Service account key (JSON)"}),
        "operating_account_id": {"type": "string", "minLength": 1,
                                 "title": "Account that owns the audiences (e.g. Google Ads customer id)"},
        "operating_account_type": {"enum": ACCOUNT_TYPES, "default": "GOOGLE_ADS"},
        "login_account_id": {"type": "string", "title": "Manager account the credentials use"},
        "login_account_type": {"enum": ACCOUNT_TYPES, "default": "GOOGLE_ADS"},
        "terms_of_service_accepted": {"type": "boolean", "default": False,
                                      "title": "Customer Match terms of service accepted"},
        "consent_ad_user_data": {"enum": CONSENT},
        "consent_ad_personalization": {"enum": CONSENT},
        "base_url": provider_url(["datamanager.googleapis.com"],
                                 default="https://datamanager.googleapis.com"),
        "token_uri": TOKEN_URI,
    }, required=["service_account_json", "operating_account_id"])

    def __init__(self, settings, **kwargs):
        super().__init__(settings, **kwargs)
        self.token = ServiceAccountToken(
            self.settings["service_account_json"], [SCOPE], session=self.session,
            timeout=self.timeout[1], redact=self.redact, check=self.check_destination,
            token_uri=self.settings.get("token_uri"))

    def check(self) -> None:
        try:
            self.token.headers()
        except RetriableError as exc:
            raise ConfigurationError(f"google: token endpoint unreachable ({exc.reason})") from None

    def prepare(self, member: Member) -> None:
        if not _member(member):
            raise SkipRecipient("no_identifiers")

    def _ingest_body(self, audience_id: str, batch: list[Member]) -> dict:
        body = self._body(audience_id, batch)
        if self.settings["terms_of_service_accepted"]:
            body["termsOfService"] = {"customerMatchTermsOfServiceStatus": "ACCEPTED"}
        consent = {name: self.settings[key] for name, key in (
            ("adUserData", "consent_ad_user_data"), ("adPersonalization", "consent_ad_personalization"))
            if self.settings.get(key)}
        if consent:
            body["consent"] = consent
        return body

    def add_batch(self, audience_id: str, batch: list[Member], info: BatchInfo) -> Iterable[Result]:
        return self._per_data_type("/v1/audienceMembers:ingest", batch,
                                   lambda members: self._ingest_body(audience_id, members))

    def remove_batch(self, audience_id: str, batch: list[Member], info: BatchInfo) -> Iterable[Result]:
        return self._per_data_type("/v1/audienceMembers:remove", batch,
                                   lambda members: self._body(audience_id, members))

    def _per_data_type(self, path: str, batch: list[Member], body) -> list[Result]:
        """One request per data type (userData, mobileData); what one settles stays settled."""
        groups: dict[str, list[Member]] = {}
        for member in batch:
            groups.setdefault(next(iter(_member(member))), []).append(member)
        results: list[Result] = []
        for members in groups.values():
            try:
                results += self._post(path, members, body(members))
            except ConnectorError as exc:
                results += [self.result_for_error(m.key, exc) for m in members]
        return results

    def _body(self, audience_id: str, batch: list[Member]) -> dict:
        destination: dict = {
            "operatingAccount": {"accountType": self.settings["operating_account_type"],
                                 "accountId": self.settings["operating_account_id"]},
            "productDestinationId": audience_id}
        if self.settings.get("login_account_id"):
            destination["loginAccount"] = {"accountType": self.settings["login_account_type"],
                                           "accountId": self.settings["login_account_id"]}
        return {"destinations": [destination], "audienceMembers": [_member(m) for m in batch],
                "encoding": "HEX"}

    def _post(self, path: str, batch: list[Member], body: dict) -> list[Result]:
        response = request_with_token(self, self.token, "POST", url(self.settings["base_url"], path),
                                      headers={"Content-Type": "application/json"},
                                      data=json.dumps(body))
        if response.ok:
            request_id = response.json().get("requestId")
            return [Result.sent(m.key, request_id) for m in batch]
        if response.status_code == 400:
            return self._per_member_errors(batch, response)
        self.raise_for_status(response)
        raise AssertionError("unreachable")

    def _per_member_errors(self, batch: list[Member], response) -> list[Result]:
        blamed: dict[int, str] = {}
        for detail in google_rpc_error(response).get("details") or []:
            for violation in detail.get("fieldViolations") or [] if isinstance(detail, dict) else []:
                match = _MEMBER_INDEX.search(violation.get("field", ""))
                if not match or int(match.group(1)) >= len(batch):
                    raise FatalError(f"http_400: {self.error_detail(response)}")
                blamed.setdefault(int(match.group(1)), self.redact(
                    f"http_400: {violation.get('reason', '')} {violation.get('description', '')}".strip()))
        if not blamed:
            raise FatalError(f"http_400: {self.error_detail(response)}")
        return [Result.failed(m.key, blamed[i]) if i in blamed else
                Result.failed(m.key, "batch_rejected_for_another_member", retryable=True, retry_after=0)
                for i, m in enumerate(batch)]

    def error_detail(self, response) -> str:
        error = google_rpc_error(response)
        if not error:
            return super().error_detail(response)
        return self.redact(f"{error.get('status', '')}: {error.get('message', '')}"[:300])


def _member(member: Member) -> dict:
    identifiers = []
    if google_hash("email", member.email):
        identifiers.append({"emailAddress": google_hash("email", member.email)})
    if google_hash("phone", member.phone):
        identifiers.append({"phoneNumber": google_hash("phone", member.phone)})
    # An address identifier needs all four parts; names hashed, region and postal code not.
    if member.first_name and member.last_name and member.country and member.zip:
        identifiers.append({"address": {
            "givenName": google_hash("name", member.first_name),
            "familyName": google_hash("name", member.last_name),
            "regionCode": member.country.strip().upper(), "postalCode": member.zip.strip()}})
    if identifiers:
        return {"userData": {"userIdentifiers": identifiers}}
    if member.madid:
        return {"mobileData": {"mobileIds": [member.madid.strip()]}}
    return {}
