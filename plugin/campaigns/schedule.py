"""When a campaign runs, and the key that makes each run happen once.

- `once`: runs as soon as it is active; `at`: runs at that time; both run once in all.
- `recurring`: every day or week from `start_at`; each period (slot) runs once.

A run's key is "once" or "slot:<epoch of the period start>", or the caller's own
Idempotency-Key; (campaign, key) is unique, so a double click, a redelivered request or two
schedulers racing find the run that exists instead of making a second one.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Mapping

from plugin.campaigns.schema import PERIODS


def _ts(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return int(value.timestamp())
    return int(datetime.fromisoformat(str(value)).timestamp())


def stored(schedule: Mapping[str, Any]) -> dict:
    """The schedule as kept in JSON (datetimes as ISO 8601)."""
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in schedule.items()}


def first_run_at(schedule: Mapping[str, Any], created_ts: int) -> int:
    kind = schedule["type"]
    if kind == "at":
        return _ts(schedule["at"])
    if kind == "recurring":
        return _ts(schedule.get("start_at")) or created_ts
    return created_ts


def slot_start(schedule: Mapping[str, Any], now_ts: int, created_ts: int) -> int:
    """The start of the period `now` falls in (the first period if it has not begun)."""
    start = first_run_at(schedule, created_ts)
    period = PERIODS[schedule["every"]]
    if now_ts <= start:
        return start
    return start + (now_ts - start) // period * period


def run_key(schedule: Mapping[str, Any], now_ts: int, created_ts: int,
            idempotency_key: str | None = None) -> str:
    if idempotency_key:
        return f"key:{idempotency_key}"[:255]
    if schedule["type"] != "recurring":
        return "once"
    return f"slot:{slot_start(schedule, now_ts, created_ts)}"


def next_run_after(schedule: Mapping[str, Any], ran_ts: int, created_ts: int) -> int | None:
    """When the next run is due after a run at `ran_ts`; None when the campaign is done.

    A recurring campaign that missed periods (scheduler down) runs once, not once per period.
    """
    if schedule["type"] != "recurring":
        return None
    return slot_start(schedule, ran_ts, created_ts) + PERIODS[schedule["every"]]
