"""The connector base: a template method that owns batching, pacing, retries and bookkeeping.

A connector declares `name`, `channel`, `settings_schema` and `batch_size`, and implements
one or two methods (`send_batch`, or `add_batch` / `remove_batch`) that make one provider
call for one batch and return a Result per item, or raise one of `connectors.errors`.
Everything else — dedup by key, pre-flight skips, splitting into batches of the provider's
limit, retrying only the retryable items with backoff and jitter, honouring Retry-After,
the HTTP status table, timeouts, rate limiting and redaction of secrets — lives here, and so
does the outbound guard (`connectors.net`): documented hosts only, no internal address, no
redirect, and results that carry our own code with at most a short provider reason.

A request that may have been accepted (read timeout, dropped connection, 500/502/504) is
*ambiguous*: it is resent within the call only by a connector whose provider de-duplicates on
our key (`deduplicates`); for the others the result says `ambiguous` and the outbox decides.
"""
from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Iterable, Mapping, Sequence, TypeVar

import requests
import urllib3

from . import net
from .errors import (
    AmbiguousError,
    ConfigurationError,
    ConnectorError,
    FatalError,
    InvalidAddress,
    RetriableError,
    SkipRecipient,
)
from .model import Member, Message, Result
from .policy import (
    Action,
    RateLimiter,
    RetryPolicy,
    action_for_status,
    jitter_source,
    may_have_been_accepted,
    retry_after_seconds,
)
from .settings import Redactor, secret_names, validate_settings

log = logging.getLogger("connectors")

Item = TypeVar("Item")

# A result's reason: our code plus at most this much of the provider's own (redacted) words.
REASON_LIMIT = 200
PROVIDER_REASON_LIMIT = 120


@dataclass(frozen=True)
class BatchInfo:
    """Where a batch sits in one delivery run (Meta's upload sessions need it)."""

    index: int  # 1-based
    count: int
    total_items: int
    attempt: int


class Connector:
    """Base of every connector. Construct with validated settings; never does work at import."""

    name: ClassVar[str]
    channel: ClassVar[str]
    settings_schema: ClassVar[dict]
    batch_size: ClassVar[int] = 1
    default_rate_limit: ClassVar[float | None] = None
    # True only where the provider drops a repeat of our key (a Standard Webhooks receiver
    # keyed on webhook-id): then a request that may have been accepted is safe to send again.
    deduplicates: ClassVar[bool] = False

    def __init__(self, settings: Mapping[str, Any], *, session: requests.Session | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic,
                 wall_clock: Callable[[], float] = time.time,
                 rand: Callable[[], float] | None = None):
        self.settings = validate_settings(self.settings_schema, settings)
        self.redact = Redactor(self.settings.get(n) for n in secret_names(self.settings_schema))
        self.egress = net.policy()
        # Every connection this session opens is checked after DNS resolution (connectors.net).
        self.session = net.guard(session or requests.Session(), self.egress)
        self.sleep, self.clock, self.wall_clock = sleep, clock, wall_clock
        self.rand = rand or jitter_source()
        self.retry = RetryPolicy(max_attempts=self.settings["max_attempts"])
        timeout = float(self.settings["timeout_seconds"])
        self.timeout = (min(5.0, timeout), timeout)
        self.limiter = RateLimiter(self.settings.get("rate_limit_per_second") or self.default_rate_limit,
                                   clock=clock, sleep=sleep)

    def close(self) -> None:
        """Release pooled connections."""
        self.session.close()

    def __enter__(self) -> "Connector":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        hidden = set(secret_names(self.settings_schema))
        shown = {k: ("***" if k in hidden and v else v) for k, v in self.settings.items()}
        return f"<{type(self).__name__} {self.name} {shown}>"

    # -- credentials -------------------------------------------------------------------------
    def check(self) -> None:
        """Validate the credentials against the provider; raise ConfigurationError if wrong."""
        raise NotImplementedError

    def _check_call(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """A credentials probe: 401/403 mean bad settings, anything transient is reported as such."""
        try:
            response = self.request(method, url, **kwargs)
        except RetriableError as exc:
            raise ConfigurationError(f"{self.name}: provider unreachable ({exc.reason})") from None
        except FatalError as exc:  # a redirect: the endpoint is not the provider's API
            raise ConfigurationError(f"{self.name}: {exc.reason}") from None
        if action_for_status(response.status_code) is Action.CONFIGURATION:
            raise ConfigurationError(f"{self.name}: credentials rejected ({self.status_reason(response)})")
        return response

    # -- HTTP --------------------------------------------------------------------------------
    @classmethod
    def allowed_hosts(cls) -> list[str] | None:
        """The provider's documented hosts (from `x-allowed-hosts`), or None for a free-form
        destination, which may be any public host."""
        hosts = [h for prop in cls.settings_schema.get("properties", {}).values()
                 for h in prop.get("x-allowed-hosts", ())]
        return hosts or None

    def check_destination(self, url: str) -> None:
        """Refuse a URL outside the provider's documented hosts before anything is sent."""
        problem = net.url_problem(url, self.allowed_hosts(), self.egress)
        if problem:
            raise net.DestinationRefused(f"destination_refused: {problem}")

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """One provider call: to an allowed host, paced by the rate limiter, bounded by the
        timeout, never following a redirect (a 3xx is an error like any other non-2xx)."""
        self.check_destination(url)
        self.limiter.acquire()
        try:
            response = self.session.request(method, url, timeout=self.timeout, allow_redirects=False,
                                            **kwargs)
        except requests.Timeout as exc:
            raise transport_error("timeout", exc) from None
        except requests.ConnectionError as exc:
            raise transport_error("connection_error", exc) from None
        except requests.RequestException as exc:
            raise RetriableError(f"request_error: {type(exc).__name__}") from None
        if 300 <= response.status_code < 400:
            # `response.ok` is true for a 3xx: stop it here, before a connector reads it as done.
            response.close()
            raise FatalError(self.status_reason(response))
        self._observe_rate_headers(response)
        return response

    def _observe_rate_headers(self, response: requests.Response) -> None:
        # A 2xx that says the window is used up pauses the limiter instead of earning a 429.
        if response.ok:
            wait = retry_after_seconds(response.headers, self.wall_clock())
            if wait:
                self.limiter.pause_until(self.clock() + min(wait, self.retry.max_wait))

    def error_detail(self, response: requests.Response) -> str:
        """The provider's own reason for an error, from its documented error shape: connectors
        that know one override this (through `provider_reason`). The body itself is never
        echoed: whatever answered may not be the provider, and bodies can carry anything."""
        return ""

    def provider_reason(self, text: Any) -> str:
        """A provider's reason as a result may carry it: one line, short, secrets redacted."""
        return self.redact(" ".join(str(text).split()))[:PROVIDER_REASON_LIMIT]

    def status_reason(self, response: requests.Response) -> str:
        """`http_<status>`, then the provider's short reason if there is one."""
        if 300 <= response.status_code < 400:
            return f"http_{response.status_code}: redirect_not_followed"
        detail = self.provider_reason(self.error_detail(response))
        return f"http_{response.status_code}: {detail}" if detail else f"http_{response.status_code}"

    def raise_for_status(self, response: requests.Response) -> None:
        """Apply the status table: 2xx returns, otherwise raise the matching error."""
        action = action_for_status(response.status_code)
        if action is Action.OK:
            return
        reason = self.status_reason(response)
        if action is Action.RETRY:
            error = AmbiguousError if may_have_been_accepted(response.status_code) else RetriableError
            raise error(reason, retry_after=retry_after_seconds(response.headers, self.wall_clock()))
        if action is Action.CONFIGURATION:
            raise ConfigurationError(reason)
        raise FatalError(reason)

    def result_for_error(self, key: str, exc: ConnectorError) -> Result:
        """Turn a raised error into one item's result."""
        reason = self.redact(exc.reason)[:REASON_LIMIT]
        if isinstance(exc, SkipRecipient):
            return Result.skipped(key, reason)
        if isinstance(exc, ConfigurationError):
            return Result.failed(key, reason, configuration_error=True)
        if isinstance(exc, RetriableError):
            return Result.failed(key, reason, retryable=True, retry_after=exc.retry_after,
                                 ambiguous=isinstance(exc, AmbiguousError))
        return Result.failed(key, reason, invalid_address=isinstance(exc, InvalidAddress))

    # -- the template method -----------------------------------------------------------------
    def prepare(self, item: Any) -> None:
        """Pre-flight check of one item; raise SkipRecipient / FatalError to keep it out of batches."""

    def deliver(self, items: Sequence[Item],
                call: Callable[[list[Item], BatchInfo], Iterable[Result]],
                batch_size: int | None = None) -> list[Result]:
        """Run `call` over batches of `items`, retrying only what is retryable; one Result per key.

        `batch_size` overrides the class limit for connectors whose endpoints differ (Braze).
        """
        order: list[str] = []
        seen: set[str] = set()
        results: dict[str, Result] = {}
        todo: list[Item] = []
        for item in items:
            if item.key in seen:
                continue  # a repeated key is one delivery, never two
            seen.add(item.key)
            order.append(item.key)
            try:
                self.prepare(item)
            except ConnectorError as exc:
                results[item.key] = self.result_for_error(item.key, exc)
                continue
            todo.append(item)

        size = batch_size or self.batch_size
        batches = [todo[i:i + size] for i in range(0, len(todo), size)]
        halted: Result | None = None
        for index, batch in enumerate(batches, start=1):
            if halted is not None:
                for item in batch:
                    results[item.key] = dataclasses.replace(halted, key=item.key, attempts=0)
                continue
            halted = self._run_batch(batch, BatchInfo(index, len(batches), len(todo), 1), call, results)
        return [results[key] for key in order]

    def _run_batch(self, batch: list[Item], info: BatchInfo, call: Callable, results: dict) -> Result | None:
        """Attempt one batch until every item is settled; returns a result if configuration is broken."""
        pending = batch
        for attempt in range(1, self.retry.max_attempts + 1):
            outcome = self._attempt(pending, dataclasses.replace(info, attempt=attempt), call)
            retry: list[Item] = []
            waits: list[float] = []
            halted = None
            for item in pending:
                result = dataclasses.replace(outcome[item.key], attempts=attempt)
                results[item.key] = result
                if result.configuration_error:
                    halted = result
                elif result.status == "failed" and result.retryable and self.may_resend(result):
                    retry.append(item)
                    waits.append(result.retry_after or 0.0)
            if halted is not None:
                log.error("%s: configuration error, delivery stopped: %s", self.name, halted.reason)
                return halted
            if not retry:
                return None
            wait = max(waits)
            if attempt == self.retry.max_attempts or wait > self.retry.max_wait:
                log.warning("%s: %d item(s) left for a later retry (%s)", self.name, len(retry),
                            results[retry[0].key].reason)
                return None
            delay = self.retry.delay(attempt, wait, self.rand)
            log.warning("%s: %d item(s) failed (%s); retry %d/%d in %.2fs", self.name, len(retry),
                        results[retry[0].key].reason, attempt + 1, self.retry.max_attempts, delay)
            self.sleep(delay)
            pending = retry
        return None

    def may_resend(self, result: Result) -> bool:
        """Whether a retryable failure may be sent again now: never an ambiguous one (the
        provider may have it already) unless the provider drops a repeat of our key."""
        return self.deduplicates or not result.ambiguous

    def _attempt(self, batch: list[Item], info: BatchInfo, call: Callable) -> dict[str, Result]:
        try:
            produced = {r.key: r for r in call(batch, info)}
        except ConnectorError as exc:
            produced = {item.key: self.result_for_error(item.key, exc) for item in batch}
        except Exception as exc:  # a bug or an unreadable provider answer: record it, do not resend
            reason = self.redact(f"unexpected_error: {type(exc).__name__}: {exc}")[:300]
            log.error("%s: %s", self.name, reason)
            produced = {item.key: Result.failed(item.key, reason) for item in batch}
        settled = {}
        for item in batch:
            result = produced.get(item.key) or Result.failed(item.key, "no_result_from_provider")
            reason = self.redact(result.reason)
            settled[item.key] = dataclasses.replace(
                result, reason=reason[:REASON_LIMIT] if isinstance(reason, str) else reason)
        sent = sum(r.status == "sent" for r in settled.values())
        log.debug("%s: batch %d/%d attempt %d: %d item(s), %d sent", self.name, info.index,
                  info.count, info.attempt, len(batch), sent)
        return settled


class MessageConnector(Connector):
    """A channel that delivers rendered messages (email, push, in-app, webhook)."""

    def send(self, messages: Sequence[Message]) -> list[Result]:
        """Deliver `messages`; one Result per distinct idempotency key, in input order."""
        return self.deliver(messages, self.send_batch)

    def prepare(self, message: Message) -> None:
        if not message.address:
            raise SkipRecipient("no_address")

    def send_batch(self, batch: list[Message], info: BatchInfo) -> Iterable[Result]:
        raise NotImplementedError


class AudienceConnector(Connector):
    """A destination that holds audience membership (ad platforms, host cohorts)."""

    def add(self, audience_id: str, members: Sequence[Member]) -> list[Result]:
        """Add `members` to the provider audience `audience_id`."""
        return self.deliver(members, lambda batch, info: self.add_batch(audience_id, batch, info))

    def remove(self, audience_id: str, members: Sequence[Member]) -> list[Result]:
        """Remove `members` from the provider audience `audience_id`."""
        return self.deliver(members, lambda batch, info: self.remove_batch(audience_id, batch, info))

    def add_batch(self, audience_id: str, batch: list[Member], info: BatchInfo) -> Iterable[Result]:
        raise NotImplementedError

    def remove_batch(self, audience_id: str, batch: list[Member], info: BatchInfo) -> Iterable[Result]:
        raise NotImplementedError


def transport_error(kind: str, exc: requests.RequestException) -> RetriableError:
    """A failed exchange: plainly retriable if nothing can have reached the provider (no
    connection was made), otherwise ambiguous (the request may have been received)."""
    if isinstance(exc, (requests.ConnectTimeout, requests.exceptions.SSLError)) or _never_connected(exc):
        return RetriableError(kind)
    return AmbiguousError(kind)


def _never_connected(exc: requests.RequestException) -> bool:
    cause = exc.args[0] if exc.args else None
    reason = getattr(cause, "reason", cause)  # urllib3 wraps connect failures in MaxRetryError
    return isinstance(reason, (urllib3.exceptions.NewConnectionError,
                               urllib3.exceptions.ConnectTimeoutError))


def url(base: str, path: str) -> str:
    """Join a base URL setting and a path without doubling slashes."""
    return base.rstrip("/") + "/" + path.lstrip("/")
