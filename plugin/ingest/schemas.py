"""Payload schemas for user events and user attributes."""
from __future__ import annotations

import math
import re
import time
from datetime import datetime, timezone
from typing import Any

from marshmallow import INCLUDE, Schema, ValidationError, fields, post_load, validate, validates_schema

MAX_FUTURE_SECONDS = 24 * 3600  # clock skew we forgive; later timestamps are mistakes
MIN_TIMESTAMP = 0  # 1970-01-01: any real history is welcome
KNOWN_ATTRIBUTES = {"email", "phone", "push_tokens", "email_consent", "push_consent", "sms_consent",
                    "ads_consent", "in_app_consent", "country", "language", "first_name", "last_name",
                    "city", "state", "zip", "external_ids", "timezone"}
ATTRIBUTE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{0,127}$")
MAX_ATTRIBUTES = 200


def nul_path(value: Any, path: str = "") -> str | None:
    """Where a NUL character hides in a JSON value (PostgreSQL cannot store one), or None."""
    if isinstance(value, str):
        return (path or "$") if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if "\x00" in key:
                return where
            found = nul_path(item, where)
            if found:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = nul_path(item, f"{path}.{index}" if path else str(index))
            if found:
                return found
    return None


def parse_timestamp(value: Any) -> int:
    """ISO 8601 (zone optional, UTC assumed; basic dates like 19970101 too) or epoch
    seconds/milliseconds → epoch seconds.

    A string of exactly eight digits is read as an ISO 8601 basic date (YYYYMMDD), the way
    many exports write days: as epoch seconds it would be a moment in 1970.
    """
    if isinstance(value, bool):
        raise ValueError("not a timestamp")
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise ValueError("not a finite number")
        seconds = value / 1000 if value > 1e11 else value
        return int(seconds)
    if isinstance(value, str):
        text = value.strip()
        if len(text) == 8 and text.isdigit():
            return int(datetime.strptime(text, "%Y%m%d").replace(tzinfo=timezone.utc).timestamp())
        if text.replace(".", "", 1).isdigit():
            return parse_timestamp(float(text))
        parsed = datetime.fromisoformat(text)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=timezone.utc)
        return int(parsed.timestamp())
    raise ValueError("not a timestamp")


class Timestamp(fields.Field):
    """A point in time, loaded as epoch seconds (UTC)."""

    default_error_messages = {
        "invalid": "Not a valid timestamp: use ISO 8601 (e.g. 2026-11-23T10:00:00Z) or epoch seconds.",
        "future": "Timestamp is more than a day in the future.",
        "past": "Timestamp is before 1970-01-01.",
    }

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        # Described for OpenAPI here, since a custom field has no type apispec could infer.
        self.metadata.setdefault("anyOf", [
            {"type": "string", "format": "date-time"},
            {"type": "integer", "minimum": MIN_TIMESTAMP, "description": "epoch seconds or milliseconds"},
            *([{"type": "null"}] if self.allow_none else [])])

    def _deserialize(self, value, attr, data, **kwargs) -> int:
        try:
            seconds = parse_timestamp(value)
        except (ValueError, OverflowError, OSError):
            raise self.make_error("invalid") from None
        if seconds > time.time() + MAX_FUTURE_SECONDS:
            raise self.make_error("future")
        if seconds < MIN_TIMESTAMP:
            raise self.make_error("past")
        return seconds

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else datetime.fromtimestamp(value, timezone.utc).isoformat()


class Text(fields.String):
    """A string of 1..max_length characters, checked inline (a validator object per field
    costs more than the check itself at import rates); the bounds appear in OpenAPI."""

    default_error_messages = {"length": "Length must be between 1 and {max_length}."}

    def __init__(self, max_length: int = 255, **kwargs):
        super().__init__(**kwargs)
        self.max_length = max_length
        self.metadata.setdefault("minLength", 1)
        self.metadata.setdefault("maxLength", max_length)

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        if not 0 < len(text) <= self.max_length:
            raise self.make_error("length", max_length=self.max_length)
        return text


class ExternalId(Text):
    """A host's user id: a non-empty string (integers are accepted and kept as text)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if isinstance(value, str):
            value = value.strip()
        return super()._deserialize(value, attr, data, **kwargs)


class JsonObject(fields.Dict):
    """A JSON object with string keys (JSON guarantees the keys; no per-key field needed)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, dict):
            raise self.make_error("invalid")
        return value


class TrimmedEmail(fields.Email):
    """An email address; surrounding whitespace (common in host exports) is dropped."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str):
            value = value.strip()
        return super()._deserialize(value, attr, data, **kwargs)


class EventSchema(Schema):
    user_id = ExternalId(required=True)
    event = Text(required=True)
    timestamp = Timestamp(required=True)
    properties = JsonObject(load_default=None, allow_none=True)
    event_id = Text(load_default=None, allow_none=True,
                    metadata={"description": "Optional unique id; redelivered ids are ignored."})


class EventBatchSchema(Schema):
    events = fields.List(fields.Nested(EventSchema), required=True, validate=validate.Length(min=1))


class UserSchema(Schema):
    """A user's attributes. Well-known ones are checked; any other name is a custom attribute.

    A null value removes the attribute. Later values win.
    """

    class Meta:
        unknown = INCLUDE

    user_id = ExternalId(required=True)
    attributes = JsonObject(load_default=None, allow_none=True,
                             metadata={"description": "Attributes may also be given at the top level."})
    email = TrimmedEmail(allow_none=True)
    phone = fields.String(allow_none=True, validate=validate.Regexp(r"^\+?[0-9 ().\-]{6,24}$"))
    push_tokens = fields.List(fields.String(validate=validate.Length(1, 4096)), allow_none=True)
    email_consent = fields.Boolean(allow_none=True)
    push_consent = fields.Boolean(allow_none=True)
    sms_consent = fields.Boolean(allow_none=True)
    ads_consent = fields.Boolean(allow_none=True)
    in_app_consent = fields.Boolean(allow_none=True)
    country = fields.String(allow_none=True, validate=validate.Regexp(r"^[A-Za-z]{2}$"))
    language = fields.String(allow_none=True, validate=validate.Length(2, 35))
    timezone = fields.String(allow_none=True, validate=validate.Length(1, 64))

    @validates_schema(skip_on_field_errors=False)
    def check_custom(self, data, **kwargs):
        custom = {k: v for k, v in data.items() if k not in self.fields}
        custom.update(data.get("attributes") or {})
        if len(custom) > MAX_ATTRIBUTES:
            raise ValidationError(f"At most {MAX_ATTRIBUTES} attributes per user.", "attributes")
        errors = {}
        for name, value in custom.items():
            if not ATTRIBUTE_NAME.match(name):
                errors[name] = ["Attribute names start with a letter or _ and use letters, digits, _ . -"]
            elif not _plain_json(value):
                errors[name] = ["Attribute values are strings, numbers, booleans, null or lists of those."]
        if errors:
            raise ValidationError(errors)

    @post_load
    def to_row(self, data, **kwargs) -> dict:
        nested = data.pop("attributes", None) or {}
        user_id = data.pop("user_id")
        attributes = {**data, **nested}
        if isinstance(attributes.get("country"), str):
            attributes["country"] = attributes["country"].upper()
        return {"user_id": user_id, "attributes": attributes}


def _plain_json(value: Any, depth: int = 0) -> bool:
    if value is None or isinstance(value, (str, bool, int)):
        return not isinstance(value, str) or len(value) <= 4096
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list) and depth == 0:
        return len(value) <= 100 and all(_plain_json(v, 1) for v in value)
    return False


class UserBatchSchema(Schema):
    users = fields.List(fields.Nested(UserSchema), required=True, validate=validate.Length(min=1))


class UserDeleteSchema(Schema):
    user_ids = fields.List(ExternalId(), required=True,
                           validate=validate.Length(1, 10_000))


class IngestResultSchema(Schema):
    accepted = fields.Integer(metadata={"description": "Rows in the batch."})
    written = fields.Integer(metadata={"description": "Rows that changed the store."})
    duplicate = fields.Boolean(metadata={"description": "True when this webhook-id was already processed."})
