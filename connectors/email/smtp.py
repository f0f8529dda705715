"""Self-hosted email over SMTP (standard library smtplib / email).

One SMTP session carries up to `messages_per_connection` messages. SMTP reply codes take the
place of HTTP statuses: 4xx is transient (retry), 5xx is permanent for that recipient (and
5.1.x "bad mailbox" marks the address invalid), an authentication or sender rejection is a
configuration error. The Message-ID is derived from the idempotency key, so a resend after an
unknown outcome carries the same id and receivers can recognise the duplicate.
"""
from __future__ import annotations

import hashlib
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formataddr
from typing import Iterable

from ..base import BatchInfo, MessageConnector
from ..errors import ConfigurationError, RetriableError
from ..model import Message, Result
from ..net import CheckedSMTP, CheckedSMTPSSL
from ..settings import connector_schema, secret
from .common import check_email, html_body, text_body, unsubscribe_headers


class SmtpEmail(MessageConnector):
    name = "smtp"
    channel = "email"
    settings_schema = connector_schema("SMTP email", {
        # Free-form: any public host; internal addresses are refused when connecting (connectors.net).
        "host": {"type": "string", "minLength": 1, "maxLength": 253, "x-destination": True,
                 "title": "SMTP server host"},
        "port": {"type": "integer", "minimum": 1, "maximum": 65535, "default": 587, "x-destination": True},
        "security": {"enum": ["starttls", "ssl", "none"], "default": "starttls",
                     "title": "Transport security"},
        "username": {"type": "string", "title": "User name (empty: no authentication)"},
        "password": secret({"type": "string", "title": "Password"}),
        "from_email": {"type": "string", "minLength": 3, "title": "From address"},
        "from_name": {"type": "string", "title": "From name"},
        "reply_to": {"type": "string", "title": "Reply-to address"},
        "messages_per_connection": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
    }, required=["host", "from_email"])

    def __init__(self, settings, **kwargs):
        super().__init__(settings, **kwargs)
        self.batch_size = self.settings["messages_per_connection"]

    def check(self) -> None:
        try:
            with self._connect() as smtp:
                smtp.noop()
        except RetriableError as exc:
            raise ConfigurationError(f"smtp: server unreachable ({exc.reason})") from None
        except ConfigurationError as exc:
            raise ConfigurationError(self.redact(exc.reason)) from None

    def prepare(self, message: Message) -> None:
        check_email(message)

    def send_batch(self, batch: list[Message], info: BatchInfo) -> Iterable[Result]:
        results: list[Result] = []
        with self._connect() as smtp:
            for position, message in enumerate(batch):
                self.limiter.acquire()
                try:
                    results.append(self._send_one(smtp, message))
                except ConfigurationError as exc:
                    # Keep what was already sent; the rest waits for fixed settings.
                    results += [self.result_for_error(m.idempotency_key, exc) for m in batch[position:]]
                    break
                except (smtplib.SMTPServerDisconnected, OSError) as exc:
                    # The session is gone: this message's outcome is unknown and the rest were
                    # never tried; all are retried (same Message-ID, so duplicates are detectable).
                    reason = f"connection_lost: {type(exc).__name__}"
                    results += [Result.failed(m.idempotency_key, reason, retryable=True)
                                for m in batch[position:]]
                    break
        return results

    def _send_one(self, smtp: smtplib.SMTP, message: Message) -> Result:
        key = message.idempotency_key
        try:
            email = self._email(message)
        except ValueError:  # a CR/LF in a header (the subject, an address): this message only
            return Result.failed(key, "invalid_message: a header holds a line break")
        try:
            refused = smtp.send_message(email, self.settings["from_email"], [message.address])
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = next(iter(exc.recipients.values()))
            return self._reply_result(key, code, text)
        except smtplib.SMTPSenderRefused as exc:
            raise ConfigurationError(f"smtp_{exc.smtp_code}: sender refused: {_text(exc.smtp_error)}") from None
        except smtplib.SMTPResponseException as exc:
            return self._reply_result(key, exc.smtp_code, exc.smtp_error)
        if refused:
            code, text = next(iter(refused.values()))
            return self._reply_result(key, code, text)
        return Result.sent(key, email["Message-ID"])

    def _reply_result(self, key: str, code: int, text: bytes | str) -> Result:
        reason = f"smtp_{code}: {self.provider_reason(_text(text))}"
        if 400 <= code < 500:
            return Result.failed(key, reason, retryable=True)
        return Result.failed(key, reason, invalid_address=" 5.1." in f" {_text(text)}")

    def _email(self, message: Message) -> EmailMessage:
        email = EmailMessage()
        email["From"] = formataddr((self.settings.get("from_name") or "", self.settings["from_email"]))
        email["To"] = message.address
        email["Subject"] = message.subject or ""
        domain = self.settings["from_email"].rpartition("@")[2] or "localhost"
        digest = hashlib.sha256(message.idempotency_key.encode()).hexdigest()[:32]
        email["Message-ID"] = f"<{digest}@{domain}>"
        if self.settings.get("reply_to"):
            email["Reply-To"] = self.settings["reply_to"]
        for name, value in unsubscribe_headers(message).items():
            email[name] = value
        email.set_content(text_body(message))
        email.add_alternative(html_body(message), subtype="html")
        return email

    def _connect(self) -> smtplib.SMTP:
        host, port, timeout = self.settings["host"], self.settings["port"], self.timeout[1]
        try:
            # The checked classes refuse an internal address after resolving the host.
            if self.settings["security"] == "ssl":
                smtp: smtplib.SMTP = CheckedSMTPSSL(host, port, timeout=timeout, egress=self.egress,
                                                    context=ssl.create_default_context())
            else:
                smtp = CheckedSMTP(host, port, timeout=timeout, egress=self.egress)
            smtp.ehlo()
            if self.settings["security"] == "starttls":
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            if self.settings.get("username"):
                smtp.login(self.settings["username"], self.settings.get("password") or "")
            return smtp
        except smtplib.SMTPAuthenticationError as exc:
            raise ConfigurationError(f"smtp_{exc.smtp_code}: authentication failed: "
                                     f"{_text(exc.smtp_error)}") from None
        except smtplib.SMTPNotSupportedError as exc:
            raise ConfigurationError(f"smtp: server does not support {exc}") from None
        except ssl.SSLError as exc:
            raise ConfigurationError(f"smtp: TLS failed: {type(exc).__name__}") from None
        except (smtplib.SMTPException, OSError) as exc:
            raise RetriableError(f"smtp_connect_failed: {type(exc).__name__}") from None


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
