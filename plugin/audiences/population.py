"""Figures a preview divides by, counted once and cached until the data under them changes.

Counting a million scores on every slider move would cost more than the preview itself, and
a prediction's scores only change when a scoring run replaces them (which bumps
`predictions.last_scored_at` or `current_model_id` in the same transaction) or when users are
erased (a new `erasures` row). Those markers form the cache key, so a stale entry is never read;
each web worker keeps its own small cache.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Hashable

from sqlalchemy import Connection, Row, ScalarSelect, func, select

from plugin.store.tables import erasures, users


@dataclass(frozen=True)
class Population:
    users: int
    expected: float | None  # sum of score / 100 over the population; None when not scored


class PopulationCache:
    """A small thread-safe LRU of populations."""

    def __init__(self, size: int = 512) -> None:
        self.size = size
        self._items: OrderedDict[Hashable, Population] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, compute: Callable[[], Population]) -> Population:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = compute()  # outside the lock: two workers may both count once, which is fine
        with self._lock:
            self._items[key] = value
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return value


def last_erasure() -> ScalarSelect:
    """The newest erasure's id (0 for none), as a scalar subquery to select beside other columns."""
    return select(func.coalesce(func.max(erasures.c.id), 0)).scalar_subquery()


def _last_erasure(conn: Connection) -> int:
    return conn.execute(select(last_erasure())).scalar()


def scored_key(conn: Connection, prediction: Row) -> tuple:
    """What identifies a prediction's current scores: its scoring run and the latest erasure
    (read with the prediction row when it carries `last_erasure`)."""
    erased = prediction._mapping.get("last_erasure")
    return (prediction.id, prediction.current_model_id, prediction.last_scored_at,
            _last_erasure(conn) if erased is None else erased)


def all_users(conn: Connection, workspace_id: int, cache: PopulationCache | None = None) -> Population:
    """Every user of the workspace. A new user raises max(users.id), so the key moves with ingestion."""
    def compute() -> Population:
        count = conn.execute(select(func.count()).select_from(users)
                             .where(users.c.workspace_id == workspace_id)).scalar()
        return Population(count, None)
    if cache is None:
        return compute()
    newest = conn.execute(select(func.max(users.c.id))).scalar() or 0
    return cache.get(("users", workspace_id, newest, _last_erasure(conn)), compute)
