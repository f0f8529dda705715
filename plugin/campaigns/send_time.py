"""Delivery time: each user's local time zone and the workspace's quiet hours.

A campaign's schedule may set `local_time` ("HH:MM"): each message is due at the next such
time on the user's own clock, from the run on. The workspace's `quiet_hours` ({"start",
"end", "time_zone"}) hold every message due inside them until they end, on the user's clock.
The user's zone is the `time_zone` attribute (or `timezone`); without a valid IANA zone,
quiet hours' `time_zone`, else UTC.

The planner writes the due time into `next_attempt_at`: one CASE over the distinct zones of
the workspace's users (a few hundred at most), computed here with the IANA database, so no
database needs time zone support and nothing loops over users.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import BigInteger, ColumnElement, Connection, case, literal, literal_column, select

from plugin.store.tables import users

MAX_ZONES = 2_000  # distinct zone values read per run; IANA has about 600


@dataclass(frozen=True)
class SendTime:
    """The rules for one run: a local send time and/or quiet hours, and the default zone."""

    local_time: time | None = None
    quiet: tuple[time, time] | None = None
    default_zone: str = "UTC"

    @property
    def active(self) -> bool:
        return self.local_time is not None or self.quiet is not None


def _clock(value: Any) -> time | None:
    if not isinstance(value, str):
        return None
    try:
        hours, minutes = value.split(":")
        return time(int(hours), int(minutes))
    except ValueError:
        return None


def _zone(name: Any) -> ZoneInfo | None:
    if not isinstance(name, str) or not name or len(name) > 64:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def rules(schedule: Mapping[str, Any], settings: Mapping[str, Any]) -> SendTime:
    quiet = settings.get("quiet_hours") if isinstance(settings.get("quiet_hours"), dict) else {}
    start, end = _clock(quiet.get("start")), _clock(quiet.get("end"))
    default = quiet.get("time_zone") if _zone(quiet.get("time_zone")) else "UTC"
    return SendTime(local_time=_clock(schedule.get("local_time")),
                    quiet=(start, end) if start and end and start != end else None, default_zone=default)


def _quiet(moment: time, quiet: tuple[time, time]) -> bool:
    start, end = quiet
    return start <= moment < end if start < end else (moment >= start or moment < end)


def _at(day: date, clock: time, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, clock, tzinfo=zone)


def due_at(now_ts: int, zone_name: str | None, send_time: SendTime) -> int:
    """When a message planned at `now_ts` is due for a user in this zone."""
    zone = _zone(zone_name) or ZoneInfo(send_time.default_zone)
    moment = datetime.fromtimestamp(now_ts, zone)
    if send_time.local_time is not None:
        wanted = _at(moment.date(), send_time.local_time, zone)
        moment = wanted if wanted >= moment else _at(moment.date() + timedelta(days=1), send_time.local_time, zone)
    if send_time.quiet is not None and _quiet(moment.timetz().replace(tzinfo=None), send_time.quiet):
        end = _at(moment.date(), send_time.quiet[1], zone)
        moment = end if end > moment else _at(moment.date() + timedelta(days=1), send_time.quiet[1], zone)
    return max(now_ts, int(moment.timestamp()))


def zone_of_user(postgres: bool) -> ColumnElement:
    """The user's zone attribute as text (`time_zone`, else `timezone`)."""
    if postgres:
        return literal_column("coalesce(users.attributes ->> 'time_zone', users.attributes ->> 'timezone')")
    return literal_column("coalesce(json_extract(users.attributes, '$.time_zone'), "
                          "json_extract(users.attributes, '$.timezone'))")


def due_expression(conn: Connection, workspace_id: int, now_ts: int, send_time: SendTime,
                   postgres: bool) -> ColumnElement:
    """SQL: each user's due time (a CASE over the workspace's distinct zones)."""
    if not send_time.active:
        return literal(now_ts, BigInteger)
    zone = zone_of_user(postgres)
    names = [z for z in conn.execute(select(zone).select_from(users).where(users.c.workspace_id == workspace_id)
                                     .group_by(zone).limit(MAX_ZONES)).scalars() if isinstance(z, str)]
    default = due_at(now_ts, None, send_time)
    whens = [(zone == name, literal(due, BigInteger)) for name in names
             if (due := due_at(now_ts, name, send_time)) != default]
    if not whens:
        return literal(default, BigInteger)
    return case(*whens, else_=literal(default, BigInteger))



