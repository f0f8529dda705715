"""Type-aware access to user attributes through each backend's own JSON operators.

An attribute condition is written once against `AttributeAccess`, with SQLite's
json_type/json_extract or PostgreSQL's jsonb operators; `PerDialect` builds it for the
connection's dialect only, when the statement is compiled. The compiled audience is one
ordinary SQLAlchemy statement, whatever backend runs it. A list of values (`in`, `not_in`) is
one bound parameter — a JSON array — tested with one membership test, whatever its length.

Every value is a bound parameter; attribute names become parameters too (a JSON path on
SQLite, a key on PostgreSQL), never SQL text.
"""
from __future__ import annotations

import json
from decimal import Decimal
from typing import Any, Callable

from sqlalchemy import Boolean, Numeric, Select, String, and_, case, cast, false, func, literal, not_, or_, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.cache_key import NO_CACHE
from sqlalchemy.sql.elements import ColumnElement

from plugin.store.tables import users

NUMBER_TYPES = ("integer", "real")            # SQLite's json_type for JSON numbers
SCALAR_TYPES = (*NUMBER_TYPES, "text", "true", "false")


class PerDialect(ColumnElement):
    """A boolean condition written once per backend; only the connection's dialect is built.

    `build(dialect_name)` makes the condition for "sqlite" or "postgresql" when the statement is
    compiled (once per dialect, then kept): a tree of many filters never pays for the backend
    it does not run on.
    """

    inherit_cache = False
    type = Boolean()
    _traverse_internals: list = []

    def __init__(self, build: Callable[[str], ColumnElement]) -> None:
        self.build = build
        self._built: dict[str, ColumnElement] = {}

    def _gen_cache_key(self, anon_map, bindparams):
        # Built at compile time, so nothing to key on: a statement holding one is never cached.
        anon_map[NO_CACHE] = True
        return None

    @classmethod
    def of(cls, sqlite: Callable[[], ColumnElement], postgresql: Callable[[], ColumnElement]) -> PerDialect:
        return cls(lambda dialect: postgresql() if dialect == "postgresql" else sqlite())

    def variant(self, dialect: str) -> ColumnElement:
        dialect = "postgresql" if dialect == "postgresql" else "sqlite"
        if dialect not in self._built:
            self._built[dialect] = self.build(dialect)
        return self._built[dialect]

    @property
    def _from_objects(self) -> list:
        return [users]  # every per-backend condition is on the user's row

    # Each variant groups and negates by its own rules; left to the Boolean type, SQLite would get
    # `users.id IN (…) = 1`, which hides the rowid lookup from its planner.
    def self_group(self, against=None) -> PerDialect:
        return PerDialect(lambda dialect: self.variant(dialect).self_group(against=against))

    def _negate(self) -> PerDialect:
        return PerDialect(lambda dialect: not_(self.variant(dialect)))


@compiles(PerDialect)
def _compile_per_dialect(element: PerDialect, compiler, **kw) -> str:
    return compiler.process(element.variant(compiler.dialect.name), **kw)


def definite(condition: ColumnElement) -> ColumnElement:
    """NULL (unknown: missing attribute, other type) becomes false, so `not` is a plain complement."""
    return func.coalesce(condition, false())


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    return "string" if isinstance(value, str) else "number"


class AttributeAccess:
    """The primitives an attribute condition needs; each returns a condition or NULL (unknown)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def equals(self, value: Any) -> ColumnElement:
        raise NotImplementedError

    def is_scalar(self) -> ColumnElement:
        raise NotImplementedError

    def present(self) -> ColumnElement:
        raise NotImplementedError

    def number(self) -> ColumnElement:
        raise NotImplementedError

    def text(self) -> ColumnElement:
        raise NotImplementedError

    def ordered_text(self) -> ColumnElement:
        return self.text()

    def has_substring(self, value: str) -> ColumnElement:
        raise NotImplementedError

    def list_has(self, value: Any) -> ColumnElement:
        raise NotImplementedError

    def nonempty_list(self) -> ColumnElement:
        raise NotImplementedError

    def nonempty_string(self) -> ColumnElement:
        return self.text() != ""

    def is_true(self) -> ColumnElement:
        return self.equals(True)

    def is_false(self) -> ColumnElement:
        return self.equals(False)

    def bind_number(self, value: int | float) -> Any:
        return literal(value)

    def compare(self, op: str, value: Any) -> ColumnElement:
        """lt/lte/gt/gte: numbers with numbers, strings with strings (code-point order)."""
        left = self.number() if _kind(value) == "number" else self.ordered_text()
        right = self.bind_number(value) if _kind(value) == "number" else literal(value, String)
        return {"lt": left < right, "lte": left <= right, "gt": left > right, "gte": left >= right}[op]

    def one_of(self, values: list) -> ColumnElement:
        return or_(*(self.equals(v) for v in _dedupe(values)))


def _dedupe(values: list) -> list:
    seen, out = set(), []
    for v in values:
        key = (_kind(v), v)
        if key not in seen:
            seen.add(key)
            out.append(v)
    return out


class SqliteAttribute(AttributeAccess):
    """json_type() tells the JSON type ('integer', 'real', 'text', 'true', …; NULL if absent)."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.path = f'$."{name}"'  # names are validated: no quotes, so the path is exact

    def _type(self) -> ColumnElement:
        return func.json_type(users.c.attributes, literal(self.path, String))

    def _value(self) -> ColumnElement:
        return func.json_extract(users.c.attributes, literal(self.path, String))

    def equals(self, value: Any) -> ColumnElement:
        if isinstance(value, bool):
            return self._type() == ("true" if value else "false")
        if isinstance(value, str):
            return and_(self._type() == "text", self._value() == literal(value, String))
        return and_(self._type().in_(NUMBER_TYPES), self._value() == literal(value))

    def one_of(self, values: list) -> ColumnElement:
        # One IN per JSON type, over one JSON-array parameter: lists may be long.
        values = _dedupe(values)
        parts = []
        strings = [v for v in values if _kind(v) == "string"]
        numbers = [v for v in values if _kind(v) == "number"]
        flags = ["true" if v else "false" for v in values if _kind(v) == "boolean"]
        if strings:
            parts.append(and_(self._type() == "text", self._value().in_(_json_values(strings))))
        if numbers:
            parts.append(and_(self._type().in_(NUMBER_TYPES), self._value().in_(_json_values(numbers))))
        if flags:
            parts.append(self._type().in_(flags))
        return or_(*parts)

    def is_scalar(self) -> ColumnElement:
        return self._type().in_(SCALAR_TYPES)

    def present(self) -> ColumnElement:
        return and_(self._type().is_not(None), self._type() != "null")

    def number(self) -> ColumnElement:
        return case((self._type().in_(NUMBER_TYPES), self._value()))

    def text(self) -> ColumnElement:
        return case((self._type() == "text", self._value()))

    def has_substring(self, value: str) -> ColumnElement:
        # instr() is case-sensitive, unlike SQLite's LIKE.
        return func.instr(self.text(), literal(value, String)) > 0

    def list_has(self, value: Any) -> ColumnElement:
        items = func.json_each(users.c.attributes, literal(self.path, String)).table_valued("type", "value")
        if isinstance(value, bool):
            match = items.c.type == ("true" if value else "false")
        elif isinstance(value, str):
            match = and_(items.c.type == "text", items.c.value == literal(value, String))
        else:
            match = and_(items.c.type.in_(NUMBER_TYPES), items.c.value == literal(value))
        # json_each() of a scalar yields the scalar itself, so insist on an array.
        return and_(self._type() == "array", select(1).select_from(items).where(match).exists())

    def nonempty_list(self) -> ColumnElement:
        return and_(self._type() == "array",
                    func.json_array_length(users.c.attributes, literal(self.path, String)) > 0)


class PostgresAttribute(AttributeAccess):
    """jsonb_typeof() tells the type ('number', 'string', 'boolean', …); casts only under CASE,
    because PostgreSQL does not promise to evaluate AND's operands in order."""

    def _json(self) -> ColumnElement:
        return users.c.attributes.op("->", return_type=JSONB)(literal(self.name, String))

    def _raw_text(self) -> ColumnElement:
        return users.c.attributes.op("->>", return_type=String)(literal(self.name, String))

    def _type(self) -> ColumnElement:
        return func.jsonb_typeof(self._json())

    def bind_number(self, value: int | float) -> Any:
        # numeric, not float8: jsonb numbers can exceed float8's range. repr() is the shortest
        # decimal that round-trips, i.e. what JSON holds, so equality behaves as in Python.
        return literal(Decimal(repr(value)) if isinstance(value, float) else Decimal(value), Numeric)

    def equals(self, value: Any) -> ColumnElement:
        # jsonb equality is type-strict (1 ≠ "1" ≠ true) and numeric for numbers.
        return self._json() == cast(literal(_json_text(value), String), JSONB)

    def is_scalar(self) -> ColumnElement:
        return self._type().in_(("number", "string", "boolean"))

    def present(self) -> ColumnElement:
        return and_(self._type().is_not(None), self._type() != "null")

    def number(self) -> ColumnElement:
        return case((self._type() == "number", cast(self._raw_text(), Numeric)))

    def text(self) -> ColumnElement:
        return case((self._type() == "string", self._raw_text()))

    def ordered_text(self) -> ColumnElement:
        # The "C" collation orders by code point, like SQLite and Python, whatever the database locale.
        return self.text().collate("C")

    def has_substring(self, value: str) -> ColumnElement:
        return func.strpos(self.text(), literal(value, String)) > 0

    def one_of(self, values: list) -> ColumnElement:
        # One membership test over one jsonb-array parameter; jsonb equality is type-strict and
        # numeric for numbers (1 = 1.0), as `equals` is.
        items = func.jsonb_array_elements(cast(literal(_json_text(_dedupe(values)), String), JSONB))
        elements = items.table_valued("value")
        return case((self.is_scalar(), self._json().in_(select(elements.c.value))))

    def list_has(self, value: Any) -> ColumnElement:
        probe = cast(literal(_json_text([value]), String), JSONB)
        return case((self._type() == "array", self._json().op("@>", return_type=Boolean)(probe)))

    def nonempty_list(self) -> ColumnElement:
        return case((self._type() == "array", func.jsonb_array_length(self._json()) > 0))


def _json_text(value: Any) -> str:
    return json.dumps(value)


def _json_values(values: list) -> Select:
    """SQLite: `SELECT value FROM json_each(:values)`, the list bound as one JSON parameter."""
    items = func.json_each(literal(_json_text(values), String)).table_valued("value")
    return select(items.c.value)


def per_dialect(build) -> PerDialect:
    """A condition built with the running backend's accessors: `build(make_attribute) -> condition`."""
    return PerDialect.of(lambda: definite(build(SqliteAttribute)), lambda: definite(build(PostgresAttribute)))
