"""CleverTap as the host: `POST /1/upload` of profile and event records (at most 1,000).

Headers `X-CleverTap-Account-Id` and `X-CleverTap-Passcode`; the base URL is the account's
region (e.g. https://in1.api.clevertap.com). CleverTap answers HTTP 200 even when records
fail: they come back in `unprocessed` (`{"status":"fail","code":..,"error":..,"record":{..}}`)
and each is a per-record failure. Audience membership is a multi-value profile property
(`likely_segments` by default) changed with `$add` / `$remove`. A 429 (too many concurrent
requests) is retried no sooner than CleverTap asks: "Please try again after 10 minutes"
(https://developer.clevertap.com/docs/api-errors), so the wait is left to the caller's queue.
"""
from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Iterable, Sequence

from ..base import AudienceConnector, BatchInfo, Connector, url
from ..errors import FatalError, RetriableError
from ..model import HostEvent, Member, Result, UserAttributes
from ..net import provider_url
from ..policy import retry_after_seconds
from ..settings import connector_schema, secret

UPLOAD_LIMIT = 1000
RETRYABLE_RECORD_CODES = {555}  # "Miscellaneous server error"
CONCURRENCY_WAIT_SECONDS = 600.0

# The API endpoint of every CleverTap region (https://developer.clevertap.com/docs/common-api-components):
# Europe (api / eu1), India, Singapore, United States, Indonesia, Middle East.
HOSTS = ["api.clevertap.com", "eu1.api.clevertap.com", "in1.api.clevertap.com", "sg1.api.clevertap.com",
         "us1.api.clevertap.com", "aps3.api.clevertap.com", "mec1.api.clevertap.com"]
COMMON = {
    "base_url": provider_url(HOSTS, default="https://api.clevertap.com",
                             title="Region endpoint (e.g. https://in1.api.clevertap.com)"),
    "account_id": {"type": "string", "minLength": 1, "title": "Account id"},
    "passcode": secret({"type": "string", "minLength": 1, "title": "Account passcode"}),
}


class CleverTapUpload(Connector):
    """`/1/upload` with per-record results; shared by the host and the in-app connectors."""

    def _headers(self) -> dict[str, str]:
        return {"X-CleverTap-Account-Id": self.settings["account_id"],
                "X-CleverTap-Passcode": self.settings["passcode"],
                "Content-Type": "application/json; charset=utf-8"}

    def check(self) -> None:
        self._check_call("POST", url(self.settings["base_url"], "/1/upload"),
                         headers=self._headers(), data=json.dumps({"d": []}))

    def upload(self, records: list[tuple[str, dict]]) -> list[Result]:
        """Upload (key, record) pairs; one Result per key."""
        response = self.request("POST", url(self.settings["base_url"], "/1/upload"),
                                headers=self._headers(), data=json.dumps({"d": [r for _, r in records]}))
        if response.status_code == 429:
            asked = retry_after_seconds(response.headers, self.wall_clock()) or 0.0
            raise RetriableError(f"http_429: {self.error_detail(response)}",
                                 retry_after=max(asked, CONCURRENCY_WAIT_SECONDS))
        self.raise_for_status(response)
        answer = response.json()
        unprocessed = answer.get("unprocessed") or []
        if answer.get("status") == "fail" and not unprocessed:
            raise FatalError(self.redact(f"clevertap: {answer.get('error')} (code {answer.get('code')})"))
        failed: dict[str, Result] = {}
        for entry in unprocessed:
            key = _owner(records, entry.get("record"), failed)
            if key is None:
                raise FatalError(self.redact(f"clevertap: unattributed failure: {entry.get('error')}"))
            reason = self.redact(f"clevertap_{entry.get('code')}: {entry.get('error')}")
            failed[key] = Result.failed(key, reason, retryable=entry.get("code") in RETRYABLE_RECORD_CODES)
        return [failed.get(key) or Result.sent(key) for key, _ in records]

    def error_detail(self, response) -> str:
        try:
            body = response.json()
            message = body.get("error") or body.get("message")
        except (ValueError, AttributeError):
            message = None
        return self.redact(str(message)[:300]) if message else super().error_detail(response)


def _owner(records: list[tuple[str, dict]], record: Any, taken: dict) -> str | None:
    """Which of our records an `unprocessed` entry is: the same record, else the same identity+type."""
    for key, sent in records:
        if key not in taken and sent == record:
            return key
    if isinstance(record, dict):
        for key, sent in records:
            if key not in taken and (sent.get("identity"), sent.get("type")) == \
                    (record.get("identity"), record.get("type")):
                return key
    return None


def epoch(when: datetime | None, now: float) -> int:
    return int(when.timestamp()) if when else int(now)


class CleverTapHost(CleverTapUpload, AudienceConnector):
    name = "clevertap"
    channel = "host"
    batch_size = UPLOAD_LIMIT
    settings_schema = connector_schema("CleverTap (host)", {
        **COMMON,
        "segment_property": {"type": "string", "minLength": 1, "default": "likely_segments",
                             "title": "Multi-value profile property holding segment membership"},
    }, required=["account_id", "passcode"])

    def add_batch(self, audience_id: str, batch: list[Member], info: BatchInfo) -> Iterable[Result]:
        return self._membership(audience_id, batch, "$add")

    def remove_batch(self, audience_id: str, batch: list[Member], info: BatchInfo) -> Iterable[Result]:
        return self._membership(audience_id, batch, "$remove")

    def _membership(self, segment: str, batch: list[Member], command: str) -> list[Result]:
        prop = self.settings["segment_property"]
        return self.upload([(m.key, {"identity": m.member_id, "type": "profile",
                                     "profileData": {prop: {command: [segment]}}}) for m in batch])

    def update_users(self, attributes: Sequence[UserAttributes] = (),
                     events: Sequence[HostEvent] = ()) -> list[Result]:
        """Write score/category profile properties and change events, 1,000 records per request."""
        return self.deliver([*attributes, *events], self._records)

    def _records(self, batch: list, info: BatchInfo) -> list[Result]:
        records = []
        for item in batch:
            if isinstance(item, UserAttributes):
                records.append((item.key, {"identity": item.user_id, "type": "profile",
                                           "profileData": dict(item.attributes)}))
            else:
                records.append((item.key, {"identity": item.user_id, "type": "event", "evtName": item.name,
                                           "evtData": dict(item.properties),
                                           "ts": epoch(item.time, self.wall_clock())}))
        return self.upload(records)
