"""Host event formats in, as they are: each adapter maps one host's documented shape to our
event and user rows, which then go through our own schemas and the one writer.

An adapter turns one *source row* (a Segment message, a Currents record, a CleverTap record)
into zero or more of our rows, or raises `RowProblem`. `convert()` validates everything before
anything is written, so a batch with one bad row is refused whole with the problems per row.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from marshmallow import ValidationError

from plugin.ingest.schemas import EventSchema, UserSchema, nul_path


class RowProblem(Exception):
    """A source row that does not fit its format: {field: [messages]}."""

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__(str(errors))
        self.errors = errors


@dataclass
class Mapped:
    """Our rows (still unvalidated) from one source row."""

    events: list[dict] = field(default_factory=list)
    users: list[dict] = field(default_factory=list)


@dataclass
class Converted:
    """Validated rows ready for the writer, and the problems per source row (by its index)."""

    events: list[dict] = field(default_factory=list)
    users: list[dict] = field(default_factory=list)
    errors: dict[str, dict] = field(default_factory=dict)
    rows: int = 0


_EVENTS = EventSchema()
_USERS = UserSchema()


def convert(rows: Iterable[tuple[Any, Any]], adapt: Callable[[Any], Mapped]) -> Converted:
    """Map and validate (index, source row) pairs; collect per-row errors by index."""
    result = Converted()
    for index, row in rows:
        result.rows += 1
        key = str(index)
        try:
            if not isinstance(row, dict):
                raise RowProblem({"_row": ["Each row is a JSON object."]})
            where = nul_path(row)
            if where:
                raise RowProblem({where: ["Contains a NUL character."]})
            mapped = adapt(row)
            events = [_EVENTS.load(e) for e in mapped.events]
            users = [_USERS.load(u) for u in mapped.users]
        except RowProblem as problem:
            result.errors[key] = problem.errors
            continue
        except ValidationError as error:
            result.errors[key] = error.normalized_messages()
            continue
        result.events.extend(events)
        result.users.extend(users)
    return result


def text(value: Any) -> str | None:
    """A non-empty string (numbers kept as text), else None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def compact(mapping: dict) -> dict:
    """Drop absent values (None), keep false and zero."""
    return {k: v for k, v in mapping.items() if v is not None}
