"""Numeric event properties as features: order value, quantity — per event type, per look-back window.

For each chosen (event type, property): the sum and the mean of its values over the last 1, 7,
30 and 90 days and over all history, and its last value. Properties are picked from a sample of
events before the cutoff (never after): numeric in most events of their type that carry
properties, and not identifiers (`personal`).
"""
from __future__ import annotations

import json
from collections import Counter

import numpy as np
from sqlalchemy import ColumnElement, Connection, Float, String, bindparam, case, cast, func, select, type_coerce
from sqlalchemy.dialects.postgresql import JSONB

from plugin.predictions import personal
from plugin.store import is_postgres
from plugin.store.tables import events

SAMPLE_EVENTS = 20_000
MAX_PROPERTIES = 8
MIN_NUMERIC_SHARE = 0.5  # of the sampled events of its type that carry properties
ALL_HISTORY = 0          # the window "ever" in a property's windows


def discover(conn: Connection, workspace_id: int, type_names: dict[int, str], since_ts: int, cutoff_ts: int) -> list[dict]:
    """The (event type, numeric property) pairs worth a feature, from a sample of the events in
    (since, cutoff]."""
    if not type_names:
        return []
    rows = conn.execute(select(events.c.event_type_id, events.c.properties)
                        .where(events.c.workspace_id == workspace_id, events.c.ts > since_ts,
                               events.c.ts <= cutoff_ts, events.c.properties.is_not(None),
                               events.c.event_type_id.in_(list(type_names)))
                        .limit(SAMPLE_EVENTS)).all()  # no ORDER BY: a sort of every recent event costs more
    with_properties: Counter = Counter()
    numeric: dict[tuple[int, str], list] = {}
    for type_id, properties in rows:
        properties = properties if isinstance(properties, dict) else json.loads(properties or "{}")
        with_properties[type_id] += 1
        for name, value in properties.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(value):
                numeric.setdefault((type_id, name), []).append(value)
    chosen = []
    for (type_id, name), values in numeric.items():
        if len(values) < MIN_NUMERIC_SHARE * with_properties[type_id] or personal.never_a_feature(name, values):
            continue
        chosen.append((-len(values), type_names[type_id], name, type_id))
    chosen.sort()
    return [{"event_type_id": type_id, "event": event, "property": name}
            for _, event, name, type_id in chosen[:MAX_PROPERTIES]]


def windows(spec: dict) -> list[int]:
    return list(spec["windows"]) + [ALL_HISTORY]


def columns(spec: dict) -> list[dict]:
    out = []
    for p in spec.get("properties", []):
        what = f"{p['event']} {p['property'].replace('_', ' ')}"
        base = f"property:{p['event_type_id']}:{p['property']}"
        for w in windows(spec):
            when = "ever" if w == ALL_HISTORY else f"in the last {'day' if w == 1 else f'{w} days'}"
            key = "all" if w == ALL_HISTORY else f"{w}d"
            out.append({"key": f"{base}:sum:{key}", "label": f"{what}, total {when}"})
            out.append({"key": f"{base}:mean:{key}", "label": f"{what}, average {when}"})
        out.append({"key": f"{base}:last", "label": f"{what}, last value"})
    return out


def value_expression(conn: Connection, name: str) -> ColumnElement:
    """The property as a number, NULL when missing or not a number (never a cast error)."""
    if is_postgres(conn):
        element = type_coerce(events.c.properties, JSONB)[name]
        return case((func.jsonb_typeof(element) == "number", cast(element.astext, Float)))
    path = bindparam(None, f'$."{name}"', type_=String)
    return case((func.json_type(events.c.properties, path).in_(["integer", "real"]),
                 func.json_extract(events.c.properties, path)))


def compute(spec: dict, values: list[tuple[np.ndarray, np.ndarray, np.ndarray]], cutoff_ts: int, n: int) -> np.ndarray:
    """(users, columns) for the spec's properties; `values[i]` is (user index, ts, value) of property i."""
    day = 86_400
    blocks = []
    for user, ts, value in values:
        past = ts <= cutoff_ts
        user, ts, value = user[past], ts[past], value[past]
        age = cutoff_ts - ts
        for w in windows(spec):
            m = np.ones(len(age), dtype=bool) if w == ALL_HISTORY else age < w * day
            total = np.bincount(user[m], weights=value[m], minlength=n)
            count = np.bincount(user[m], minlength=n)
            with np.errstate(invalid="ignore", divide="ignore"):
                blocks.extend([total, np.where(count > 0, total / np.maximum(count, 1), np.nan)])
        last = np.full(n, np.nan)
        if len(user):
            order = np.lexsort((value, ts, user))
            ordered_user = user[order]
            is_last = np.append(ordered_user[1:] != ordered_user[:-1], True)
            last[ordered_user[is_last]] = value[order][is_last]
        blocks.append(last)
    return np.column_stack(blocks) if blocks else np.empty((n, 0))
