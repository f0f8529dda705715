"""Firebase Cloud Messaging HTTP v1 (`POST /v1/projects/{id}/messages:send`).

One request per device token, sent from a bounded thread pool. Data values are sent as
strings and the notification+data payload is checked against FCM's 4,096-byte limit before
sending. Error mapping, after https://firebase.google.com/docs/reference/fcm/rest/v1/ErrorCode
and https://firebase.google.com/docs/cloud-messaging/error-codes:

- UNREGISTERED (404), and INVALID_ARGUMENT (400) that blames the registration token, mark the
  token invalid: the plugin retires it and tries the user's other devices;
- any other INVALID_ARGUMENT or SENDER_ID_MISMATCH is fatal for that message;
- QUOTA_EXCEEDED (429) waits for the quota window to refill: never less than a minute;
- UNAVAILABLE (503) is retried honouring Retry-After; INTERNAL (500) may have been delivered,
  so it is ambiguous (FCM does not de-duplicate: never resent within the call).
"""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterable

from ..base import BatchInfo, MessageConnector, url
from ..errors import AmbiguousError, ConfigurationError, ConnectorError, FatalError, InvalidAddress, RetriableError
from ..google_auth import TOKEN_URI, ServiceAccountToken, google_rpc_error, request_with_token
from ..model import Message, Result
from ..net import guard, provider_url
from ..policy import retry_after_seconds
from ..settings import connector_schema, secret

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
PAYLOAD_LIMIT = 4096
RESERVED_DATA_KEYS = {"from", "notification", "message_type"}
RETRY_CODES = {"QUOTA_EXCEEDED", "UNAVAILABLE"}
# FCM: "retry using exponential backoff with a minimum initial delay of 1 minute" on QUOTA_EXCEEDED.
QUOTA_WAIT_SECONDS = 60.0
TOKEN_FIELD = "message.token"
BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"


class FcmPush(MessageConnector):
    name = "fcm"
    channel = "push"
    batch_size = 500  # messages handed to the thread pool at a time (FCM takes one per request)
    settings_schema = connector_schema("Firebase Cloud Messaging", {
        "project_id": {"type": "string", "minLength": 1, "title": "Firebase project id"},
        "service_account_json": secret({"type": "string", "minLength": 2,
                                        "title": "Service account key (JSON)"}),
        "base_url": provider_url(["fcm.googleapis.com"], default="https://fcm.googleapis.com"),
        "token_uri": TOKEN_URI,
        "concurrency": {"type": "integer", "minimum": 1, "maximum": 64, "default": 16,
                        "title": "Requests in flight at once"},
        "validate_only": {"type": "boolean", "default": False, "title": "Dry run (FCM validate_only)"},
    }, required=["project_id", "service_account_json"])

    def __init__(self, settings, **kwargs):
        super().__init__(settings, **kwargs)
        self.token = ServiceAccountToken(
            self.settings["service_account_json"], [SCOPE], session=self.session,
            timeout=self.timeout[1], redact=self.redact, check=self.check_destination,
            token_uri=self.settings.get("token_uri"))
        # Enough pooled connections for every worker, or they would queue on the pool.
        guard(self.session, self.egress, pool_connections=4, pool_maxsize=self.settings["concurrency"])
        self.endpoint = url(self.settings["base_url"],
                            f"/v1/projects/{self.settings['project_id']}/messages:send")

    def check(self) -> None:
        try:
            self.token.headers()
        except RetriableError as exc:
            raise ConfigurationError(f"fcm: token endpoint unreachable ({exc.reason})") from None

    def prepare(self, message: Message) -> None:
        super().prepare(message)
        for key in message.data:
            lowered = str(key).lower()
            if lowered in RESERVED_DATA_KEYS or lowered.startswith(("google", "gcm")):
                raise FatalError(f"reserved_data_key: {key}")
        size = len(json.dumps(_content(message), separators=(",", ":")).encode())
        if size > PAYLOAD_LIMIT:
            raise FatalError(f"payload_too_large: {size} bytes > {PAYLOAD_LIMIT}")

    def send_batch(self, batch: list[Message], info: BatchInfo) -> Iterable[Result]:
        workers = min(self.settings["concurrency"], len(batch))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fcm") as pool:
            return list(pool.map(self._send_one, batch))

    def _send_one(self, message: Message) -> Result:
        body = {"message": {"token": message.address, **_content(message)}}
        if self.settings["validate_only"]:
            body["validate_only"] = True
        try:
            response = request_with_token(
                self, self.token, "POST", self.endpoint, data=json.dumps(body),
                headers={"Content-Type": "application/json"},
                refresh_on_401=lambda r: _fcm_code(r) != "THIRD_PARTY_AUTH_ERROR")
            if response.ok:
                return Result.sent(message.idempotency_key, response.json().get("name"))
            self._raise_fcm_error(response)
        except ConnectorError as exc:
            return self.result_for_error(message.idempotency_key, exc)
        raise AssertionError("unreachable")

    def _raise_fcm_error(self, response) -> None:
        code = _fcm_code(response)
        reason = f"http_{response.status_code}: {code or ''} {self.error_detail(response)}".strip()
        if code == "UNREGISTERED":
            raise InvalidAddress(f"unregistered: {self.error_detail(response)}")
        if code == "INVALID_ARGUMENT" and _blames_token(response):
            raise InvalidAddress(f"invalid_registration_token: {self.error_detail(response)}")
        if code in ("INVALID_ARGUMENT", "SENDER_ID_MISMATCH"):
            raise FatalError(reason)
        asked = retry_after_seconds(response.headers, self.wall_clock())
        if code == "QUOTA_EXCEEDED":
            raise RetriableError(reason, retry_after=max(asked or 0.0, QUOTA_WAIT_SECONDS))
        if code in RETRY_CODES:
            raise RetriableError(reason, retry_after=asked)
        if code == "INTERNAL":
            raise AmbiguousError(reason, retry_after=asked)
        if code == "THIRD_PARTY_AUTH_ERROR":
            raise ConfigurationError(reason)
        self.raise_for_status(response)

    def error_detail(self, response) -> str:
        error = google_rpc_error(response)
        if not error:
            return super().error_detail(response)
        return self.redact(f"{error.get('status', '')}: {error.get('message', '')}"[:300])


def _content(message: Message) -> dict[str, Any]:
    content: dict[str, Any] = {
        "data": {**{str(k): _as_string(v) for k, v in message.data.items()},
                 "likely_idempotency_key": message.idempotency_key}}
    notification = {k: v for k, v in (("title", message.subject), ("body", message.text)) if v}
    if notification:
        content["notification"] = notification
    return content


def _as_string(value: Any) -> str:
    """FCM data values must be strings: JSON for structures, lowercase booleans."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _blames_token(response) -> bool:
    """Whether a 400 INVALID_ARGUMENT is about the registration token, not the message.

    FCM names a bad message field in a google.rpc.BadRequest detail; a token it cannot
    parse comes back with only the FcmError detail and a message about the token.
    """
    error = google_rpc_error(response)
    fields = [violation.get("field") for detail in error.get("details") or []
              if isinstance(detail, dict) and detail.get("@type") == BAD_REQUEST
              for violation in detail.get("fieldViolations") or [] if isinstance(violation, dict)]
    if fields:
        return all(field == TOKEN_FIELD for field in fields)
    return "registration token" in str(error.get("message", "")).lower()


def _fcm_code(response) -> str | None:
    """The FCM errorCode from details, else the canonical status (e.g. INVALID_ARGUMENT)."""
    error = google_rpc_error(response)
    for detail in error.get("details") or []:
        if isinstance(detail, dict) and str(detail.get("@type", "")).endswith("FcmError"):
            return detail.get("errorCode")
    return error.get("status")
