"""Ids and cursors: one marshmallow field for every id the API takes.

Every id, run id and id cursor lies in the range of the store's integer keys; a bigger
number is a 400 naming its field, never a comparison the database driver refuses (a 500
before: SQLite stops at 64 bits, and PostgreSQL's INTEGER keys at 31). Numbers compared with
JSON values (attribute filters, goal conditions) are held to 64 bits.
"""
from __future__ import annotations

from typing import Any

from marshmallow import fields

MIN_ID = 1
MAX_ID = 2**31 - 1          # the store's INTEGER keys (PostgreSQL `integer`); every id fits
MIN_INT64 = -(2**63)
MAX_INT64 = 2**63 - 1


class Id(fields.Integer):
    """A row id (or id-based cursor): a whole number from 1 to 2^31 - 1.

    Strict by default (JSON bodies: 12, not "12"); `strict=False` for query strings.
    """

    default_error_messages = {
        "invalid": "Not a valid id: a whole number.",
        "out_of_range": f"Not an id: ids are whole numbers from {MIN_ID} to {MAX_ID}.",
    }

    def __init__(self, *, strict: bool = True, **kwargs: Any) -> None:
        kwargs.setdefault("metadata", {}).update({"minimum": MIN_ID, "maximum": MAX_ID})
        super().__init__(strict=strict, **kwargs)

    def _validated(self, value: Any) -> int | None:
        if isinstance(value, bool):
            raise self.make_error("invalid")
        number = super()._validated(value)
        if number is not None and not MIN_ID <= number <= MAX_ID:
            raise self.make_error("out_of_range")
        return number


def is_int64(value: Any) -> bool:
    """True when an integer fits the stores' 64-bit integers (non-integers: True, not our concern)."""
    return isinstance(value, bool) or not isinstance(value, int) or MIN_INT64 <= value <= MAX_INT64
