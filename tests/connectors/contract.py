"""The connector contract: every connector's test class inherits these tests.

A subclass provides the hooks (how to build the connector and its items, how to arrange
one successful or failing provider call in the provider's real response shape, how many
items each provider call carried) and gets, for free, tests that the batch limit is
honoured at limit and limit+1, that 500->200 and 429+Retry-After are retried, that 4xx
is not, that 401 is a configuration error, that results are per recipient, and that
secrets appear in no log, result, exception or repr.
"""
from __future__ import annotations

import logging
import math

import pytest

from connectors.errors import ConfigurationError

from .conftest import FakeTime


class ConnectorContract:
    batch_limit: int = 1
    # Retry-After the contract asks the fake provider to send with a throttling answer.
    throttle_wait: float = 7.0
    supports_retry_after: bool = True
    secrets: tuple[str, ...] = ()
    # Loggers of the fake provider itself (it says what we told it to say); ours are all others.
    provider_loggers: tuple[str, ...] = ()

    # -- hooks every connector test class provides ------------------------------------------
    def make_connector(self, fake_time: FakeTime, **overrides):
        raise NotImplementedError

    def make_items(self, n: int) -> list:
        raise NotImplementedError

    def deliver(self, connector, items) -> list:
        return connector.send(items)

    def arrange_ok(self, transport) -> None:
        """Arrange one successful provider call (whatever it carries)."""
        raise NotImplementedError

    def arrange_error(self, transport, kind: str, *, retry_after: float | None = None,
                      message: str = "error") -> None:
        """Arrange one failing call; kind is server | throttle | bad_request | unauthorized | timeout
        (nothing reached the provider) | read_timeout | ambiguous (the provider may have acted on
        it: its documented 500). Unsupported kinds: raise pytest.skip."""
        raise NotImplementedError

    def arrange_check(self, transport, ok: bool) -> None:
        raise NotImplementedError

    def items_per_call(self, transport) -> list[int]:
        """How many items each provider call carried, in order."""
        raise NotImplementedError

    def expected_split(self, n: int) -> list[int]:
        full, rest = divmod(n, self.batch_limit)
        return [self.batch_limit] * full + ([rest] if rest else [])

    @pytest.fixture
    def transport(self, http):
        return http

    @pytest.fixture(autouse=True)
    def _keep_clock(self, fake_time):
        # Providers that send an absolute reset time need the fake wall clock when arranging.
        self.fake_time = fake_time

    # -- the contract -------------------------------------------------------------------------
    def test_batch_exactly_at_limit_is_one_call(self, transport, fake_time):
        n = self.batch_limit
        for _ in self.expected_split(n):
            self.arrange_ok(transport)
        items = self.make_items(n)
        results = self.deliver(self.make_connector(fake_time), items)
        assert [r.status for r in results] == ["sent"] * n
        assert self.items_per_call(transport) == self.expected_split(n)

    def test_batch_limit_plus_one_splits(self, transport, fake_time):
        n = self.batch_limit + 1
        for _ in self.expected_split(n):
            self.arrange_ok(transport)
        results = self.deliver(self.make_connector(fake_time), self.make_items(n))
        assert [r.status for r in results] == ["sent"] * n
        assert self.items_per_call(transport) == self.expected_split(n)
        assert max(self.items_per_call(transport)) <= self.batch_limit

    def test_results_are_per_recipient_in_input_order(self, transport, fake_time):
        items = self.make_items(3)
        for _ in self.expected_split(3):
            self.arrange_ok(transport)
        results = self.deliver(self.make_connector(fake_time), items)
        assert [r.key for r in results] == [item.key for item in items]

    def test_server_error_then_success_is_retried(self, transport, fake_time):
        self.arrange_error(transport, "server")
        self.arrange_ok(transport)
        [result] = self.deliver(self.make_connector(fake_time), self.make_items(1))
        assert result.status == "sent" and result.attempts == 2
        assert len(fake_time.sleeps) == 1 and fake_time.sleeps[0] > 0

    def test_throttle_honours_retry_after(self, transport, fake_time):
        if not self.supports_retry_after:
            pytest.skip("this transport has no Retry-After")
        self.arrange_error(transport, "throttle", retry_after=self.throttle_wait)
        self.arrange_ok(transport)
        [result] = self.deliver(self.make_connector(fake_time), self.make_items(1))
        assert result.status == "sent" and result.attempts == 2
        assert fake_time.sleeps and fake_time.sleeps[0] >= self.throttle_wait

    def test_long_retry_after_is_left_to_the_outbox(self, transport, fake_time):
        if not self.supports_retry_after:
            pytest.skip("this transport has no Retry-After")
        self.arrange_error(transport, "throttle", retry_after=3600)
        [result] = self.deliver(self.make_connector(fake_time), self.make_items(1))
        assert result.status == "failed" and result.retryable
        assert result.retry_after >= 3600
        assert fake_time.sleeps == []

    def test_exhausted_retries_stay_retryable(self, transport, fake_time):
        for _ in range(2):
            self.arrange_error(transport, "server")
        [result] = self.deliver(self.make_connector(fake_time, max_attempts=2), self.make_items(1))
        assert result.status == "failed" and result.retryable and result.attempts == 2

    def test_timeout_is_retried(self, transport, fake_time):
        self.arrange_error(transport, "timeout")
        self.arrange_ok(transport)
        [result] = self.deliver(self.make_connector(fake_time), self.make_items(1))
        assert result.status == "sent" and result.attempts == 2

    @pytest.mark.parametrize("kind", ["read_timeout", "ambiguous"])
    def test_ambiguous_failure_is_resent_only_where_the_provider_deduplicates(self, transport, fake_time,
                                                                             kind):
        """A request the provider may have accepted is not sent again within the call unless the
        provider drops a repeat of our key: a second copy would reach the recipient."""
        connector = self.make_connector(fake_time)
        self.arrange_error(transport, kind)
        if connector.deduplicates:
            self.arrange_ok(transport)
        [result] = self.deliver(connector, self.make_items(1))
        if connector.deduplicates:
            assert result.status == "sent" and result.attempts == 2
        else:
            assert result.status == "failed" and result.ambiguous and result.retryable
            assert result.attempts == 1 and fake_time.sleeps == []

    def test_client_error_is_not_retried(self, transport, fake_time):
        self.arrange_error(transport, "bad_request")
        [result] = self.deliver(self.make_connector(fake_time), self.make_items(1))
        assert result.status == "failed" and not result.retryable
        assert not result.configuration_error and result.attempts == 1
        assert fake_time.sleeps == []

    def test_unauthorized_is_a_configuration_error(self, transport, fake_time):
        self.arrange_error(transport, "unauthorized")
        [result] = self.deliver(self.make_connector(fake_time), self.make_items(1))
        assert result.status == "failed" and result.configuration_error
        assert not result.retryable and fake_time.sleeps == []

    def test_secrets_never_logged_returned_or_raised(self, transport, fake_time, caplog):
        caplog.set_level(logging.DEBUG)
        leak = " ".join(self.secrets)
        self.arrange_error(transport, "server", message=f"echo {leak}")
        self.arrange_error(transport, "bad_request", message=f"echo {leak}")
        connector = self.make_connector(fake_time)
        results = self.deliver(connector, self.make_items(1))
        self.arrange_error(transport, "unauthorized", message=f"echo {leak}")
        results += self.deliver(connector, self.make_items(1))
        # The whole record, extras included: a JSON log formatter would print all of it.
        ours = [f"{r.getMessage()} {r.__dict__}" for r in caplog.records
                if not r.name.startswith(self.provider_loggers or ("\0",))]
        text = "\n".join(ours) + repr(connector) + " ".join(str(r) for r in results)
        assert results[0].reason and results[1].reason
        for value in self.secrets:
            assert value not in text

    def test_check_rejects_bad_credentials_without_leaking(self, transport, fake_time):
        self.arrange_check(transport, ok=False)
        with pytest.raises(ConfigurationError) as raised:
            self.make_connector(fake_time).check()
        for value in self.secrets:
            assert value not in str(raised.value)

    def test_check_accepts_good_credentials(self, transport, fake_time):
        self.arrange_check(transport, ok=True)
        self.make_connector(fake_time).check()


def calls_needed(n: int, limit: int) -> int:
    return math.ceil(n / limit)
