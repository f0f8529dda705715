"""Reading request bodies: JSON only, size-limited, validated by a marshmallow schema."""
from __future__ import annotations

import json

from flask import request
from marshmallow import Schema, ValidationError

from plugin.errors import UnsupportedMediaType, ValidationFailed
from plugin.ingest.schemas import nul_path


# The largest integer the store's columns and SQLite's INTEGER hold: larger ids and versions in a
# query are refused as field errors, never sent to the database to overflow there.
INT64_MAX = 2 ** 63 - 1


def json_body() -> object:
    if not request.mimetype or request.mimetype != "application/json":
        raise UnsupportedMediaType("send the body as application/json",
                                   details={"content_type": request.content_type or ""})
    raw = request.get_data(cache=True)
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise ValidationFailed("the body is not valid JSON", code="invalid_json",
                               details={"reason": str(error)[:200]}) from None
    except RecursionError:  # e.g. [[[[…]]]] nested deeper than the parser's stack
        raise ValidationFailed("the body is nested too deeply", code="invalid_json",
                               details={"reason": "nesting too deep"}) from None
    # JSON allows "\u0000" but no store keeps it (PostgreSQL refuses NUL in text and JSONB):
    # refused here, for every endpoint, rather than failing at the database.
    where = nul_path(body) if b"\\u0000" in raw else None
    if where:
        raise ValidationFailed("text may not contain NUL (\\u0000) characters", code="validation_failed",
                               details={where: ["Contains a NUL character."]})
    return body


def load(schema: Schema, data: object) -> dict:
    try:
        return schema.load(data)
    except ValidationError as error:
        raise ValidationFailed("the request has invalid fields; nothing was written",
                               details=error.normalized_messages()) from None
