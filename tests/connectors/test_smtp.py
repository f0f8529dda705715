"""SMTP connector against a real local SMTP server (aiosmtpd on 127.0.0.1)."""
from __future__ import annotations

import email
import socket
from collections import deque

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from connectors import net
from connectors.email.smtp import SmtpEmail
from connectors.model import Message

from .contract import ConnectorContract

PASSWORD = "smtp-pass-7f3Qk9"


class ProgrammableHandler:
    """Accepts mail, unless told to answer the next RCPTs or AUTHs otherwise."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.rcpt_replies: deque[str] = deque()
        self.auth_failures = 0  # how many sessions will have every AUTH attempt rejected
        self.rejected_sessions: set[int] = set()
        self.received: list[tuple[int, list[str], bytes]] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.rcpt_replies:
            reply = self.rcpt_replies.popleft()
            if reply == "drop":
                server.transport.close()
                return "421 4.4.2 connection dropped"
            return reply
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        self.received.append((id(session), list(envelope.rcpt_tos), envelope.content))
        return "250 2.0.0 OK queued"

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        # smtplib tries each advertised mechanism in turn, so reject the whole session.
        if id(session) in self.rejected_sessions:
            return AuthResult(success=False, handled=False)
        if self.auth_failures:
            self.auth_failures -= 1
            self.rejected_sessions.add(id(session))
            return AuthResult(success=False, handled=False)
        ok = auth_data.login == b"likely" and auth_data.password == PASSWORD.encode()
        return AuthResult(success=ok, handled=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(autouse=True)
def trusted_local_server():
    """The local server stands for an on-premise one the operator trusts
    (LIKELY_OUTBOUND_ALLOWED_HOSTS); without that, a loopback address is refused."""
    net.configure(["127.0.0.1"])
    yield
    net.configure()


@pytest.fixture(scope="module")
def smtp_server():
    handler = ProgrammableHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(),
                            authenticator=handler.authenticate, auth_require_tls=False)
    controller.start()
    yield handler, controller.port
    controller.stop()


def message(i: int, **changes) -> Message:
    fields = dict(idempotency_key=f"key-{i}", recipient_id=f"user-{i}", address=f"user{i}@example.com",
                  subject=f"Offer {i}", text=f"Hello {i}", html=f"<b>Hello {i}</b>",
                  unsubscribe_url=f"https://likely.example/u/{i}")
    fields.update(changes)
    return Message(**fields)


class TestSmtpContract(ConnectorContract):
    batch_limit = 3
    supports_retry_after = False  # SMTP replies carry no Retry-After
    secrets = (PASSWORD,)
    provider_loggers = ("mail.log",)  # aiosmtpd logs the replies we program it with

    @pytest.fixture
    def transport(self, smtp_server):
        handler, port = smtp_server
        handler.reset()
        self.port = port
        yield handler
        assert not handler.rcpt_replies, "an arranged SMTP reply was never used"

    def make_connector(self, fake_time, **overrides):
        settings = {"host": "127.0.0.1", "port": self.port, "security": "none", "username": "likely",
                    "password": PASSWORD, "from_email": "news@shop.example",
                    "messages_per_connection": self.batch_limit, **overrides}
        return SmtpEmail(settings, **fake_time.kwargs())

    def make_items(self, n):
        return [message(i) for i in range(n)]

    def arrange_ok(self, transport):
        pass  # the server accepts unless told otherwise

    def arrange_error(self, transport, kind, *, retry_after=None, message="error"):
        if kind == "server":
            transport.rcpt_replies.append(f"451 4.3.0 {message}")
        elif kind == "bad_request":
            transport.rcpt_replies.append(f"550 5.1.1 {message}")
        elif kind == "timeout":
            transport.rcpt_replies.append("drop")
        elif kind == "unauthorized":
            transport.auth_failures += 1
        elif kind in ("read_timeout", "ambiguous"):
            pytest.skip("the SMTP fake drops connections before DATA only")
        else:
            raise AssertionError(kind)

    def arrange_check(self, transport, ok):
        if not ok:
            transport.auth_failures += 1

    def items_per_call(self, transport):
        sessions: dict[int, int] = {}
        for session, _, _ in transport.received:
            sessions[session] = sessions.get(session, 0) + 1
        return list(sessions.values())


@pytest.fixture
def smtp(smtp_server, fake_time):
    handler, port = smtp_server
    handler.reset()
    contract = TestSmtpContract()
    contract.port = port
    return handler, contract.make_connector(fake_time)


def test_message_is_multipart_with_one_click_unsubscribe(smtp):
    handler, connector = smtp
    [result] = connector.send([message(1)])
    assert result.status == "sent"
    [(_, rcpts, raw)] = handler.received
    assert rcpts == ["user1@example.com"]
    mail = email.message_from_bytes(raw)
    assert mail["List-Unsubscribe"] == "<https://likely.example/u/1>"
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert mail["Message-ID"] == result.provider_id
    assert [p.get_content_type() for p in mail.walk()][1:] == ["text/plain", "text/html"]


def test_message_id_is_stable_for_the_same_idempotency_key(smtp):
    handler, connector = smtp
    first = connector.send([message(1)])[0].provider_id
    again = connector.send([message(1, subject="changed")])[0].provider_id
    assert first == again and connector.send([message(2)])[0].provider_id != first


def test_bad_mailbox_marks_the_address_invalid(smtp):
    handler, connector = smtp
    handler.rcpt_replies.append("550 5.1.1 <user0@example.com>: Recipient address rejected")
    results = connector.send([message(0), message(1)])
    assert results[0].status == "failed" and results[0].invalid_address and not results[0].retryable
    assert results[1].status == "sent"


def test_dropped_connection_retries_the_rest_of_the_session(smtp):
    handler, connector = smtp
    handler.rcpt_replies.append("drop")  # the line goes dead at the first recipient
    results = connector.send([message(0), message(1), message(2)])
    assert [r.status for r in results] == ["sent", "sent", "sent"]
    assert results[0].attempts == 2 and results[2].attempts == 2


def test_authentication_failure_in_check_is_a_configuration_error(smtp):
    handler, connector = smtp
    handler.auth_failures = 1
    from connectors.errors import ConfigurationError
    with pytest.raises(ConfigurationError, match="authentication failed"):
        connector.check()
