"""SendGrid v3 Mail Send (`POST /v3/mail/send`): up to 1,000 personalizations per request.

Each message is one personalization with its own subject, one-click unsubscribe headers and
`custom_args` (idempotency key, recipient id) so SendGrid's event webhook maps back to the
outbox. Rendered bodies travel as per-personalization substitutions; with a dynamic template
(`template_id`) the message data goes in `dynamic_template_data` instead.

A 400 rejects the whole request. Errors naming `personalizations.N` fail recipient N alone;
a 400 naming no recipient is bisected — each half sent on its own — until the message it is
about stands alone and fails alone (https://www.twilio.com/docs/sendgrid/api-reference/mail-send/mail-send,
"Errors"). A message SendGrid would refuse whatever we do (an empty subject: the subject needs
at least one character) is skipped in `prepare`, with its reason, before any request.
"""
from __future__ import annotations

import json
import re
from typing import Iterable

from ..base import BatchInfo, MessageConnector, url
from ..errors import ConfigurationError, ConnectorError, FatalError, SkipRecipient
from ..model import Message, Result
from ..net import provider_url
from ..settings import connector_schema, secret
from .common import check_email, html_body, text_body, unsubscribe_headers

TEXT_TAG, HTML_TAG = "-likely_text-", "-likely_html-"
# SendGrid: "The total collective size of your substitutions may not exceed 10,000 bytes per
# personalization object." Bigger messages go out in a request of their own with literal content.
SUBSTITUTIONS_LIMIT = 10_000
_PERSONALIZATION = re.compile(r"^personalizations\.(\d+)")
# The global API host and the EU data residency host (subusers in the EU region).
HOSTS = ["api.sendgrid.com", "api.eu.sendgrid.com"]

# Fields every message of a request shares: an error about one of them fails the whole batch
# (splitting cannot help), where any other unattributed error is looked for by splitting.
_REQUEST_FIELDS = ("from", "reply_to", "template_id", "asm", "mail_settings", "tracking_settings",
                   "ip_pool_name", "batch_id", "send_at", "categories")


class SendgridEmail(MessageConnector):
    name = "sendgrid"
    channel = "email"
    batch_size = 1000
    settings_schema = connector_schema("SendGrid email", {
        "api_key": secret({"type": "string", "minLength": 1, "title": "API key (mail.send scope)"}),
        "from_email": {"type": "string", "format": "email", "minLength": 3, "title": "From address"},
        "from_name": {"type": "string", "title": "From name"},
        "reply_to": {"type": "string", "title": "Reply-to address"},
        "template_id": {"type": "string", "title": "Dynamic template id (optional)"},
        "base_url": provider_url(HOSTS, default="https://api.sendgrid.com",
                                 title="API base URL (EU: https://api.eu.sendgrid.com)"),
    }, required=["api_key", "from_email"])

    @property
    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.settings['api_key']}",
                "Content-Type": "application/json"}

    def check(self) -> None:
        response = self._check_call("GET", url(self.settings["base_url"], "/v3/scopes"),
                                    headers=self._headers)
        try:
            scopes = response.json().get("scopes", []) if response.ok else []
        except (ValueError, AttributeError):
            scopes = []
        if "mail.send" not in scopes:
            raise ConfigurationError("sendgrid: the API key lacks the mail.send scope")

    def prepare(self, message: Message) -> None:
        check_email(message)
        if not self.settings.get("template_id") and not (message.subject or "").strip():
            raise SkipRecipient("empty_subject")  # a dynamic template brings its own subject

    def send_batch(self, batch: list[Message], info: BatchInfo) -> Iterable[Result]:
        templated = bool(self.settings.get("template_id"))
        shared: list[Message] = []
        alone: list[Message] = []
        for message in batch:
            fits = templated or _substitution_size(message) <= SUBSTITUTIONS_LIMIT
            (shared if fits else alone).append(message)
        groups = ([(shared, None)] if shared else []) + [([m], m) for m in alone]
        results: list[Result] = []
        for group, literal in groups:
            results += self._send_group(group, literal)
        return results

    def _send_group(self, group: list[Message], literal: Message | None) -> list[Result]:
        """One request; a 400 that names no recipient splits it in two until the culprit is alone.

        Errors are settled per request: what an earlier request sent stays sent.
        """
        try:
            return self._post(group, self._payload(group, literal=literal))
        except _Unattributed as exc:
            if len(group) == 1:
                return [self.result_for_error(group[0].idempotency_key, exc)]
            half = len(group) // 2
            return self._send_group(group[:half], literal) + self._send_group(group[half:], literal)
        except ConnectorError as exc:
            return [self.result_for_error(m.idempotency_key, exc) for m in group]

    def _payload(self, messages: list[Message], literal: Message | None) -> dict:
        sender = {"email": self.settings["from_email"]}
        if self.settings.get("from_name"):
            sender["name"] = self.settings["from_name"]
        payload: dict = {"from": sender,
                         "personalizations": [self._personalization(m, literal) for m in messages]}
        if self.settings.get("reply_to"):
            payload["reply_to"] = {"email": self.settings["reply_to"]}
        if self.settings.get("template_id"):
            payload["template_id"] = self.settings["template_id"]
        elif literal is not None:
            payload["content"] = [{"type": "text/plain", "value": text_body(literal)},
                                  {"type": "text/html", "value": html_body(literal)}]
        else:
            payload["content"] = [{"type": "text/plain", "value": TEXT_TAG},
                                  {"type": "text/html", "value": HTML_TAG}]
        return payload

    def _personalization(self, message: Message, literal: Message | None) -> dict:
        personalization: dict = {
            "to": [{"email": message.address}],
            "headers": unsubscribe_headers(message),
            "custom_args": {"likely_idempotency_key": message.idempotency_key,
                            "likely_recipient_id": message.recipient_id},
        }
        if self.settings.get("template_id"):
            personalization["dynamic_template_data"] = {
                **message.data, "subject": message.subject, "unsubscribe_url": message.unsubscribe_url}
            return personalization
        personalization["subject"] = message.subject or ""
        if literal is None:
            personalization["substitutions"] = {TEXT_TAG: text_body(message),
                                                HTML_TAG: html_body(message)}
        return personalization

    def _post(self, messages: list[Message], payload: dict) -> list[Result]:
        response = self.request("POST", url(self.settings["base_url"], "/v3/mail/send"),
                                headers=self._headers, data=json.dumps(payload))
        if response.status_code == 400:
            return self._per_recipient_errors(messages, response)
        self.raise_for_status(response)
        message_id = response.headers.get("X-Message-Id")
        return [Result.sent(m.idempotency_key, message_id) for m in messages]

    def _per_recipient_errors(self, messages: list[Message], response) -> list[Result]:
        """A 400 rejects the whole request; errors naming `personalizations.N` blame one recipient.

        Those recipients fail for good and the others (never sent) are retried right away; a 400
        that blames no recipient raises _Unattributed, for the caller to split the request.
        """
        blamed: dict[int, str] = {}
        for error in _errors(response):
            field = error.get("field") or ""
            if field.split(".")[0] in _REQUEST_FIELDS:
                raise FatalError(f"http_400: {self.error_detail(response)}")
            match = _PERSONALIZATION.match(field)
            if not match or int(match.group(1)) >= len(messages):
                raise _Unattributed(f"http_400: {self.error_detail(response)}")
            blamed.setdefault(int(match.group(1)), f"{error.get('field')}: {error.get('message')}")
        if not blamed:
            raise _Unattributed(f"http_400: {self.error_detail(response)}")
        return [Result.failed(m.idempotency_key, self.redact(f"http_400: {blamed[i]}"))
                if i in blamed else
                Result.failed(m.idempotency_key, "batch_rejected_for_another_recipient",
                              retryable=True, retry_after=0)
                for i, m in enumerate(messages)]

    def error_detail(self, response) -> str:
        errors = _errors(response)
        if not errors:
            return super().error_detail(response)
        return self.redact("; ".join(
            f"{e.get('field')}: {e.get('message')}" if e.get("field") else str(e.get("message"))
            for e in errors)[:300])


class _Unattributed(FatalError):
    """A 400 that rejects the request without naming the recipient at fault."""


def _errors(response) -> list[dict]:
    try:
        body = response.json()
    except ValueError:
        return []
    errors = body.get("errors") if isinstance(body, dict) else None
    return [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []


def _substitution_size(message: Message) -> int:
    return len(text_body(message).encode()) + len(html_body(message).encode()) + len(TEXT_TAG) * 2
