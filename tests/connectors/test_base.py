"""The base's own rules, on a toy connector: batching, retries, halting, pacing, secrets, registry."""
from __future__ import annotations

import email.utils
import logging

import pytest
import responses

import connectors
from connectors import net
from connectors.base import MessageConnector
from connectors.errors import ConfigurationError, FatalError, RetriableError, SkipRecipient
from connectors.model import Message, Result
from connectors.policy import Action, RateLimiter, RetryPolicy, action_for_status, meta_usage_wait, retry_after_seconds
from connectors.settings import connector_schema, secret


class Toy(MessageConnector):
    """Answers from a script: a list of {key: outcome} per call, outcome in sent/retry/fatal/config/boom."""

    name, channel, batch_size = "toy", "email", 3
    settings_schema = connector_schema("Toy", {"token": secret({"type": "string"})}, required=["token"])

    def __init__(self, script, **kwargs):
        super().__init__({"token": "toy-secret-token"}, **kwargs)
        self.script, self.calls = list(script), []

    def send_batch(self, batch, info):
        self.calls.append([m.key for m in batch])
        plan = self.script.pop(0) if self.script else {}
        if plan == "config":
            raise ConfigurationError("http_401: bad token toy-secret-token")
        if plan == "boom":
            raise KeyError("provider answered nonsense")
        out = []
        for m in batch:
            outcome = plan.get(m.key, "sent")
            out.append({"sent": Result.sent(m.key, "p1"),
                        "retry": Result.failed(m.key, "http_503", retryable=True),
                        "fatal": Result.failed(m.key, "http_400")}[outcome])
        return out


def msgs(*keys, address="a@b.c"):
    return [Message(idempotency_key=k, recipient_id=k, address=address) for k in keys]


def toy(fake_time, script=()):
    return Toy(script, **fake_time.kwargs())


def test_repeated_keys_are_delivered_once(fake_time):
    connector = toy(fake_time)
    results = connector.send(msgs("a", "b", "a"))
    assert [r.key for r in results] == ["a", "b"] and connector.calls == [["a", "b"]]


def test_only_retryable_items_are_retried(fake_time):
    connector = toy(fake_time, [{"a": "retry", "b": "fatal"}, {}])
    results = connector.send(msgs("a", "b", "c"))
    assert connector.calls == [["a", "b", "c"], ["a"]]
    assert [(r.status, r.attempts) for r in results] == [("sent", 2), ("failed", 1), ("sent", 1)]
    assert len(fake_time.sleeps) == 1


def test_configuration_error_halts_later_batches_but_keeps_what_was_sent(fake_time):
    connector = toy(fake_time, [{}, "config"])
    results = connector.send(msgs(*"abcdefg"))
    assert connector.calls == [["a", "b", "c"], ["d", "e", "f"]]
    assert [r.status for r in results[:3]] == ["sent"] * 3
    assert all(r.configuration_error and not r.retryable for r in results[3:])
    assert results[6].attempts == 0  # never tried
    assert "toy-secret-token" not in results[3].reason


def test_unexpected_exception_is_recorded_not_raised_nor_resent(fake_time, caplog):
    connector = toy(fake_time, ["boom", {}])
    results = connector.send(msgs(*"abcd"))
    assert [r.status for r in results] == ["failed"] * 3 + ["sent"]
    assert not results[0].retryable and "unexpected_error: KeyError" in results[0].reason
    assert connector.calls == [["a", "b", "c"], ["d"]]


def test_items_without_address_are_skipped_before_batching(fake_time):
    connector = toy(fake_time)
    results = connector.send(msgs("a") + msgs("b", address=None))
    assert results[1].status == "skipped" and results[1].reason == "no_address"
    assert connector.calls == [["a"]]


def test_retries_stop_at_max_attempts_and_stay_retryable(fake_time):
    connector = toy(fake_time, [{"a": "retry"}] * 4)
    [result] = connector.send(msgs("a"))
    assert result.retryable and result.attempts == 4 and len(connector.calls) == 4
    assert len(fake_time.sleeps) == 3


def test_backoff_is_exponential_with_bounded_jitter():
    policy = RetryPolicy(base_delay=1, max_delay=8)
    low = [policy.delay(n, None, lambda: 0.0) for n in range(1, 6)]
    high = [policy.delay(n, None, lambda: 1.0) for n in range(1, 6)]
    assert low == [0.5, 1, 2, 4, 4] and high == [1, 2, 4, 8, 8]
    assert policy.delay(1, 30, lambda: 0.5) == 30  # Retry-After wins when longer


@pytest.mark.parametrize("status,action", [
    (200, Action.OK), (202, Action.OK), (204, Action.OK),
    (429, Action.RETRY), (500, Action.RETRY), (502, Action.RETRY), (503, Action.RETRY),
    (504, Action.RETRY), (401, Action.CONFIGURATION), (403, Action.CONFIGURATION),
    (400, Action.FATAL), (404, Action.FATAL), (409, Action.FATAL), (413, Action.FATAL),
    (422, Action.FATAL)])
def test_status_table(status, action):
    assert action_for_status(status) is action


def test_retry_after_header_forms():
    now = 1_700_000_000.0
    assert retry_after_seconds({"Retry-After": "12"}, now) == 12
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert retry_after_seconds({"retry-after": date}, now) == pytest.approx(30, abs=1)
    assert retry_after_seconds({"X-RateLimit-Retry-After": "4"}, now) == 4
    assert retry_after_seconds({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(now + 9))},
                               now) == 9
    assert retry_after_seconds({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "5"}, now) == 5
    assert retry_after_seconds({"X-RateLimit-Remaining": "3", "X-RateLimit-Reset": "5"}, now) is None
    assert retry_after_seconds({}, now) is None


def test_meta_usage_headers():
    headers = {"X-Business-Use-Case-Usage": '{"act_1": [{"type": "ads_management", '
               '"call_count": 100, "estimated_time_to_regain_access": 3}]}'}
    assert meta_usage_wait(headers) == 180
    assert meta_usage_wait({"X-Ad-Account-Usage": '{"acc_id_util_pct": 100, "reset_time_duration": 42}'}) == 42
    assert meta_usage_wait({"X-Business-Use-Case-Usage": "not json"}) is None


def test_rate_limiter_paces_requests(fake_time):
    limiter = RateLimiter(10, burst=1, clock=fake_time.clock, sleep=fake_time.sleep)
    start = fake_time.now
    for _ in range(21):
        limiter.acquire()
    assert fake_time.now - start == pytest.approx(2.0)


def test_rate_limiter_pause(fake_time):
    limiter = RateLimiter(None, clock=fake_time.clock, sleep=fake_time.sleep)
    limiter.acquire()
    limiter.pause_until(fake_time.now + 5)
    limiter.acquire()
    assert fake_time.sleeps == [5]


def test_exhausted_window_on_a_2xx_pauses_before_the_next_request(http, fake_time):
    reset = str(int(fake_time.wall_clock() + 6))
    url = "https://api.sendgrid.com/v3/mail/send"
    http.add(responses.POST, url, status=202, headers={"X-RateLimit-Remaining": "0",
                                                       "X-RateLimit-Reset": reset})
    http.add(responses.POST, url, status=202)
    sender = connectors.SendgridEmail({"api_key": "k" * 10, "from_email": "a@b.c"}, **fake_time.kwargs())
    message = dict(recipient_id="u", address="u@x.com", subject="s", text="t", unsubscribe_url="https://x/u")
    sender.send([Message(idempotency_key="1", **message)])
    sender.send([Message(idempotency_key="2", **message)])
    assert fake_time.sleeps == [pytest.approx(6, abs=1)]


def test_every_call_has_a_timeout(http, fake_time):
    http.add(responses.POST, "https://api.sendgrid.com/v3/mail/send", status=202)
    sender = connectors.SendgridEmail({"api_key": "k" * 10, "from_email": "a@b.c", "timeout_seconds": 7},
                                      **fake_time.kwargs())
    sender.send([Message("a", "u", "u@x.com", subject="s", text="t", unsubscribe_url="https://x/u")])
    assert http.calls[0].request.req_kwargs["timeout"] == (5.0, 7.0)


def test_invalid_settings_name_the_field_never_the_value():
    with pytest.raises(ConfigurationError) as raised:
        connectors.SendgridEmail({"api_key": 1234567890, "from_email": "a@b.c", "bogus": "x"})
    text = str(raised.value)
    assert "api_key" in text and "bogus" in text and "1234567890" not in text
    with pytest.raises(ConfigurationError, match="from_email"):
        connectors.SendgridEmail({"api_key": "secret-value-xyz"})


def test_repr_hides_secrets(fake_time):
    assert "toy-secret-token" not in repr(toy(fake_time)) and "***" in repr(toy(fake_time))


def test_errors_become_results(fake_time):
    connector = toy(fake_time)
    assert connector.result_for_error("k", SkipRecipient("no_consent")).status == "skipped"
    retry = connector.result_for_error("k", RetriableError("http_503", retry_after=3))
    assert retry.retryable and retry.retry_after == 3
    assert not connector.result_for_error("k", FatalError("http_400")).retryable


# -- registry ---------------------------------------------------------------------------------
def test_registry_enables_only_enabled_sections(fake_time):
    active = connectors.enabled({
        "sendgrid": {"enabled": True, "api_key": "k" * 10, "from_email": "a@b.c"},
        "smtp": {"enabled": False, "host": "localhost", "from_email": "a@b.c"},
    }, **fake_time.kwargs())
    assert list(active) == ["sendgrid"] and isinstance(active["sendgrid"], connectors.SendgridEmail)
    assert connectors.by_channel(active, "email") == active


def test_registry_refuses_unknown_connectors():
    with pytest.raises(ConfigurationError, match="carrier_pigeon"):
        connectors.enabled({"carrier_pigeon": {"enabled": True}})


def test_registry_validates_each_section():
    with pytest.raises(ConfigurationError, match="api_key"):
        connectors.enabled({"sendgrid": {"enabled": True, "from_email": "a@b.c"}})


def test_every_connector_declares_name_channel_schema_and_marks_secrets():
    names = set()
    for name, cls in connectors.CONNECTORS.items():
        assert cls.name == name and name not in names
        names.add(name)
        assert cls.channel in {"email", "push", "in_app", "ads", "host", "webhook"}
        for field, prop in cls.settings_schema["properties"].items():
            if prop.get("x-secret"):
                assert prop["writeOnly"] is True
            if any(word in field for word in ("key", "secret", "token", "passcode", "password")) \
                    and field not in ("token_uri", "schema_keys"):
                assert prop.get("x-secret"), f"{name}.{field} looks secret but is not marked"


def test_combined_schema_is_valid_json_schema():
    import jsonschema
    schema = connectors.settings_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert set(schema["properties"]) == set(connectors.CONNECTORS)
    assert schema["properties"]["fcm"]["x-channel"] == "push"
    assert schema["properties"]["fcm"]["properties"]["service_account_json"]["x-secret"] is True


def test_logs_stay_free_of_secrets(fake_time, caplog):
    caplog.set_level(logging.DEBUG)
    toy(fake_time, [{"a": "retry"}, "config"]).send(msgs("a"))
    assert "toy-secret-token" not in caplog.text


def test_connector_is_a_context_manager_that_closes_its_session(fake_time):
    closed = []
    with toy(fake_time) as connector:
        connector.session.close = lambda: closed.append(True)
    assert closed == [True]


@pytest.fixture
def trusted_loopback():
    """The loopback server stands for a host the operator trusts (LIKELY_OUTBOUND_ALLOWED_HOSTS);
    without that the outbound guard refuses a loopback address before connecting."""
    net.configure(["127.0.0.1"])
    yield
    net.configure()


def _loopback_sendgrid(port: int, fake_time, **settings):
    return connectors.SendgridEmail({"api_key": "k" * 10, "from_email": "a@b.c", "max_attempts": 2,
                                     "base_url": f"http://127.0.0.1:{port}", **settings}, **fake_time.kwargs())


def _email():
    return Message("key-1", "u", "u@x.com", subject="s", text="t", unsubscribe_url="https://x/u")


def test_a_refused_connection_never_reached_the_provider_and_is_retried(fake_time, trusted_loopback):
    """Nothing listens on the port: no byte of the request left us, so sending again is safe."""
    import socket
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again before the request
    [result] = _loopback_sendgrid(port, fake_time).send([_email()])
    assert result.status == "failed" and result.retryable and not result.ambiguous
    assert result.attempts == 2  # retried within the call


def test_a_read_timeout_after_sending_is_ambiguous_and_not_resent(fake_time, trusted_loopback):
    """The provider took the whole request and never answered (a loopback server that reads and
    stays silent): it may have accepted it, and SendGrid does not de-duplicate."""
    import socket
    import threading
    received: list[bytes] = []
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    done = threading.Event()

    def silent():
        while not done.is_set():
            try:
                server.settimeout(0.2)
                conn, _ = server.accept()
            except OSError:
                continue
            received.append(conn.recv(65536))
            done.wait(5)
            conn.close()

    thread = threading.Thread(target=silent, daemon=True)
    thread.start()
    try:
        [result] = _loopback_sendgrid(server.getsockname()[1], fake_time, timeout_seconds=1).send([_email()])
    finally:
        done.set()
        thread.join()
        server.close()
    assert result.status == "failed" and result.ambiguous and result.attempts == 1
    assert received and received[0].startswith(b"POST /v3/mail/send")  # it did reach the provider
