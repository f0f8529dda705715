"""CleverTap exports and webhook payloads in: events and profiles.

Field names are CleverTap's own, in three documented shapes:

- Upload API records (https://developer.clevertap.com/docs/upload-events-api and
  …/upload-user-profiles-api), as hosts forward them: `{"type": "event", "identity", "ts",
  "evtName", "evtData"}` and `{"type": "profile", "identity", "ts", "profileData"}`; a body
  holds them under `d`.
- Get Events API records (https://developer.clevertap.com/docs/get-events-api): `{"profile":
  {"identity", "objectId", "email", …, "profileData"}, "ts": 20151023140416, "event_props"}`
  under `records`. The event name is the one the export asked for (`eventName` when a record
  carries it, else given with the file or the request).
- Webhook payloads (https://developer.clevertap.com/docs/webhooks): `{"target_date",
  "profiles": [{"identity", "objectId", "email", "profileData", "event_properties", …}]}`.

The user id is the CleverTap `identity` (the host's own user id). Profile keys become
attributes: `Email`, `Phone`, `Name` and the subscription flags `MSG-email`, `MSG-push`,
`MSG-sms` map to ours (`email`, `phone`, `name`, `email_consent`, …); other names keep their
words with spaces as `_`. `ts` is epoch seconds or CleverTap's YYYYMMDDHHMMSS.
"""
from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any, Iterable

from plugin.ingest.formats import Mapped, RowProblem, compact, text

PROFILE_KEYS = {"Email": "email", "Phone": "phone", "Name": "name", "email": "email",
                "phone": "phone", "name": "name", "MSG-email": "email_consent",
                "MSG-push": "push_consent", "MSG-sms": "sms_consent", "Timezone": "time_zone",
                "tz": "time_zone"}
_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]")


def rows(body: Any) -> Iterable[tuple[str, Any]]:
    """(index, record) pairs of any of the three shapes (or a bare list of records)."""
    for key in ("d", "records", "profiles"):
        if isinstance(body, dict) and isinstance(body.get(key), list):
            for index, record in enumerate(body[key]):
                yield f"{key}.{index}", _tagged(key, record)
            return
    if isinstance(body, list):
        for index, record in enumerate(body):
            yield str(index), record
        return
    yield "_body", body


def _tagged(key: str, record: Any) -> Any:
    # A webhook's profile entries have no `type`; say what they are.
    if key == "profiles" and isinstance(record, dict) and "type" not in record:
        return {**record, "type": "webhook_profile"}
    return record


def adapter(event_name: str | None = None):
    """The record → rows mapping; `event_name` names Get Events records without their own."""
    def adapt(record: dict) -> Mapped:
        kind = record.get("type")
        if kind == "event":
            return _event(record, record.get("identity"), record.get("evtName"), record.get("evtData"))
        if kind == "profile":
            return Mapped(users=[_profile(record.get("identity"), record.get("profileData"), {})])
        if kind == "webhook_profile":
            return Mapped(users=[_profile(record.get("identity"), record.get("profileData"), record)])
        if isinstance(record.get("profile"), dict):  # a Get Events record
            profile = record["profile"]
            name = record.get("eventName") or event_name
            if not name:
                raise RowProblem({"eventName": ["Unknown: give the event name the export was made for."]})
            mapped = _event(record, profile.get("identity"), name, record.get("event_props"))
            mapped.users.append(_profile(profile.get("identity"), profile.get("profileData"), profile))
            return mapped
        raise RowProblem({"type": ["Must be event or profile (Upload API), or a Get Events record "
                                   "with a profile."]})
    return adapt


def _user_id(identity: Any) -> str:
    user_id = text(identity)
    if user_id is None:
        raise RowProblem({"identity": ["Required: the host's user id (objectId alone names no host user)."]})
    return user_id


def _event(record: dict, identity: Any, name: Any, data: Any) -> Mapped:
    user_id = _user_id(identity)
    if data is not None and not isinstance(data, dict):
        raise RowProblem({"evtData": ["Must be an object."]})
    if record.get("ts") is None:
        raise RowProblem({"ts": ["Required (epoch seconds or YYYYMMDDHHMMSS)."]})
    return Mapped(events=[compact({"user_id": user_id, "event": name, "timestamp": timestamp(record["ts"]),
                                   "properties": dict(data) if data else None,
                                   "event_id": text(record.get("id") or record.get("eventId"))})])


def _profile(identity: Any, data: Any, outer: dict) -> dict:
    user_id = _user_id(identity)
    if data is not None and not isinstance(data, dict):
        raise RowProblem({"profileData": ["Must be an object."]})
    attributes: dict[str, Any] = {}
    for source in ({k: outer.get(k) for k in ("email", "phone", "name")}, data or {}):
        for key, value in source.items():
            if value is None:
                continue
            attributes[PROFILE_KEYS.get(key) or _UNSAFE.sub("_", str(key))[:128]] = value
    return {"user_id": user_id, **attributes}


def timestamp(value: Any) -> Any:
    """CleverTap's YYYYMMDDHHMMSS (14 digits) as ISO 8601; anything else as given."""
    digits = str(value)
    if isinstance(value, (int, str)) and digits.isdigit() and len(digits) == 14:
        try:
            return datetime.strptime(digits, "%Y%m%d%H%M%S").replace(tzinfo=timezone.utc).isoformat()
        except ValueError:
            raise RowProblem({"ts": ["Not a valid YYYYMMDDHHMMSS time."]}) from None
    return value
