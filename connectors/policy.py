"""Retry, backoff and rate-limit rules shared by every connector.

One table maps an HTTP status to an action; one function reads how long a provider
asked us to wait; one token bucket paces requests. Clock and sleep are injectable
so tests never wait for real.
"""
from __future__ import annotations

import email.utils
import enum
import json
import random as _random
import threading
import time
from dataclasses import dataclass
from typing import Callable, Mapping


class Action(enum.Enum):
    OK = "ok"
    RETRY = "retry"
    CONFIGURATION = "configuration"
    FATAL = "fatal"


def action_for_status(status: int) -> Action:
    """The single HTTP status -> action table (429/5xx retry, 401/403 configuration, 4xx fatal)."""
    if 200 <= status < 300:
        return Action.OK
    if status == 429 or status >= 500:
        return Action.RETRY
    if status in (401, 403):
        return Action.CONFIGURATION
    return Action.FATAL


# Answers given after the provider may already have acted on the request: an internal error
# mid-processing, or a gateway that lost the upstream's answer. 503 and 429 say "not taken".
AMBIGUOUS_STATUSES = frozenset({500, 502, 504})


def may_have_been_accepted(status: int) -> bool:
    """Whether a retryable status leaves it open that the provider accepted the request."""
    return status in AMBIGUOUS_STATUSES


def retry_after_seconds(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """How long the provider asked us to wait, from the standard and common rate-limit headers.

    Reads `Retry-After` (seconds or HTTP date), `X-RateLimit-Retry-After` (seconds, Braze)
    and, when the window is exhausted, `X-RateLimit-Reset` (epoch seconds: SendGrid, Braze).
    """
    now = time.time() if now is None else now
    lowered = {k.lower(): v for k, v in headers.items()}
    value = lowered.get("retry-after") or lowered.get("x-ratelimit-retry-after")
    if value:
        value = value.strip()
        try:
            return max(0.0, float(value))
        except ValueError:
            parsed = email.utils.parsedate_to_datetime(value) if value else None
            if parsed is not None:
                return max(0.0, parsed.timestamp() - now)
    if lowered.get("x-ratelimit-remaining", "").strip() == "0" and lowered.get("x-ratelimit-reset"):
        try:
            reset = float(lowered["x-ratelimit-reset"])
        except ValueError:
            return None
        # Some providers send seconds-until-reset rather than an epoch; both are handled.
        return max(0.0, reset - now) if reset > 1e9 else reset
    return None


def meta_usage_wait(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait from Meta's `X-Business-Use-Case-Usage` / `X-Ad-Account-Usage` headers."""
    lowered = {k.lower(): v for k, v in headers.items()}
    waits: list[float] = []
    raw = lowered.get("x-business-use-case-usage")
    if raw:
        try:
            for entries in json.loads(raw).values():
                for entry in entries:
                    minutes = entry.get("estimated_time_to_regain_access") or 0
                    if minutes:
                        waits.append(float(minutes) * 60)
        except (ValueError, AttributeError, TypeError):
            pass
    raw = lowered.get("x-ad-account-usage")
    if raw:
        try:
            usage = json.loads(raw)
            if float(usage.get("acc_id_util_pct", 0)) >= 100 and usage.get("reset_time_duration"):
                waits.append(float(usage["reset_time_duration"]))
        except (ValueError, AttributeError, TypeError):
            pass
    return max(waits) if waits else None


@dataclass(frozen=True)
class RetryPolicy:
    """In-call retries. Waits longer than `max_wait` are left to the outbox (result carries retry_after)."""

    max_attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_wait: float = 60.0

    def delay(self, attempt: int, retry_after: float | None, rand: Callable[[], float]) -> float:
        """Exponential backoff with 'equal jitter', never shorter than what the provider asked."""
        exp = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        delay = exp / 2 + rand() * exp / 2
        return max(delay, retry_after or 0.0)


class RateLimiter:
    """A thread-safe token bucket; `pause_until` lets a provider's headers stop us for a while."""

    def __init__(self, per_second: float | None, *, burst: float | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self.per_second = per_second
        self.capacity = burst if burst is not None else max(1.0, per_second or 1.0)
        self._tokens = self.capacity
        self._clock, self._sleep = clock, sleep
        self._last = clock()
        self._paused_until = 0.0
        self._lock = threading.Lock()

    def pause_until(self, when: float) -> None:
        with self._lock:
            self._paused_until = max(self._paused_until, when)

    def acquire(self) -> None:
        while True:
            with self._lock:
                now = self._clock()
                wait = self._paused_until - now
                if wait <= 0 and self.per_second:
                    self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.per_second)
                    self._last = now
                    if self._tokens >= 1:
                        self._tokens -= 1
                        return
                    wait = (1 - self._tokens) / self.per_second
                elif wait <= 0:
                    return
            self._sleep(wait)


def jitter_source(seed: int | None = None) -> Callable[[], float]:
    return _random.Random(seed).random
