"""User attributes as model features, extracted in SQL (one numeric column per attribute).

Attributes have no history in the store, so they are taken as they are now, for training
(features as of a past cutoff) as well as for scoring. Identifiers and personal data (names,
addresses, postal codes, the email address itself; see `personal`) are never features;
reachability is (has an email address, push tokens, consent flags). Custom attributes are picked
up when a sample of users shows them to be booleans, numbers, or strings with few distinct values.
"""
from __future__ import annotations

import json
from collections import Counter
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Float,
    String,
    bindparam,
    case,
    cast,
    func,
    literal,
    select,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import JSONB

from plugin.predictions import personal
from plugin.store import is_postgres, workspace_users
from plugin.store.tables import users

PROFILE = {"country": "categorical", "language": "categorical", "timezone": "categorical",
           "email": "present", "phone": "present", "push_tokens": "count",
           "email_consent": "boolean", "push_consent": "boolean", "sms_consent": "boolean",
           "ads_consent": "boolean", "in_app_consent": "boolean"}
LABELS = {"email": "has an email address", "phone": "has a phone number", "push_tokens": "push tokens"}
SAMPLE_USERS = 20_000
MIN_COVERAGE = 0.01
MAX_ATTRIBUTES = 24
MAX_CATEGORIES = 32
MAX_DISTINCT_STRINGS = 50


def discover(conn: Connection, workspace_id: int) -> list[dict]:
    """The attribute features for a new model, from a sample of the workspace's latest users."""
    rows = conn.execute(select(users.c.attributes).where(workspace_users(conn, workspace_id))
                        .order_by(users.c.id.desc()).limit(SAMPLE_USERS)).scalars().all()
    sample = [r if isinstance(r, dict) else json.loads(r or "{}") for r in rows]
    if not sample:
        return []
    seen: dict[str, Counter] = {}
    values: dict[str, Counter] = {}
    raw: dict[str, list] = {}
    for attributes in sample:
        for name, value in attributes.items():
            if value is None or (name not in PROFILE and personal.identifying_name(name)):
                continue
            seen.setdefault(name, Counter())[_kind_of(value)] += 1
            raw.setdefault(name, []).append(value)
            if isinstance(value, str):
                values.setdefault(name, Counter())[value] += 1
    specs = []
    for name, kinds in seen.items():
        present = sum(kinds.values())
        if present / len(sample) < MIN_COVERAGE:
            continue
        if name not in PROFILE and personal.identifying_values(raw[name]):
            continue
        kind = PROFILE.get(name) or _custom_kind(kinds, values.get(name, Counter()))
        if kind is None:
            continue
        spec = {"name": name, "kind": kind, "label": LABELS.get(name, name.replace("_", " "))}
        if kind == "categorical":
            common = sorted(values.get(name, Counter()).items(), key=lambda kv: (-kv[1], kv[0]))
            # A value too rare to learn from is treated as missing.
            spec["values"] = [v for v, count in common[:MAX_CATEGORIES] if count >= max(1, len(sample) // 1000)]
            if not spec["values"]:
                continue
        specs.append((present, spec))
    specs.sort(key=lambda item: (-item[0], item[1]["name"]))
    return [spec for _, spec in specs[:MAX_ATTRIBUTES]]


def _kind_of(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return "list" if isinstance(value, list) else "other"


def _custom_kind(kinds: Counter, strings: Counter) -> str | None:
    kind, count = kinds.most_common(1)[0]
    if count < 0.9 * sum(kinds.values()):
        return None  # mixed types: no stable meaning
    if kind == "boolean":
        return "boolean"
    if kind == "number":
        return "numeric"
    if kind == "list":
        return "count"
    if kind == "string" and len(strings) <= MAX_DISTINCT_STRINGS:
        return "categorical"
    return None  # free text or identifiers


def expression(conn: Connection, spec: dict) -> ColumnElement:
    """The attribute's feature value per user (NULL = missing): a category code, 0/1, a number or a count."""
    if is_postgres(conn):
        return _postgres(spec)
    return _sqlite(spec)


def _sqlite(spec: dict) -> ColumnElement:
    path = bindparam(None, f'$."{spec["name"]}"', type_=String)
    kind = spec["kind"]
    if kind == "categorical":
        raw = func.json_extract(users.c.attributes, path)
        return case({value: literal(i) for i, value in enumerate(spec["values"])}, value=raw)
    json_type = func.json_type(users.c.attributes, path)
    if kind == "boolean":
        return case({"true": literal(1), "false": literal(0)}, value=json_type)
    if kind == "numeric":
        return case((json_type.in_(["integer", "real"]), func.json_extract(users.c.attributes, path)))
    if kind == "present":
        return case((json_type == "text", literal(1)), else_=literal(0))
    return func.coalesce(func.json_array_length(users.c.attributes, path), 0)


def _postgres(spec: dict) -> ColumnElement:
    element = type_coerce(users.c.attributes, JSONB)[spec["name"]]
    json_type = func.jsonb_typeof(element)
    kind = spec["kind"]
    if kind == "categorical":
        return case({value: literal(i) for i, value in enumerate(spec["values"])},
                    value=case((json_type == "string", element.astext)))
    if kind == "boolean":
        return case((json_type == "boolean", case((element == cast(literal("true"), JSONB), 1), else_=0)))
    if kind == "numeric":
        return case((json_type == "number", cast(element.astext, Float)))
    if kind == "present":
        return case((json_type == "string", literal(1)), else_=literal(0))
    return case((json_type == "array", func.jsonb_array_length(element)), else_=literal(0))
