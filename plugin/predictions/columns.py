"""Reading query results straight into numpy columns, one round trip per query.

Fetching a million rows as Python tuples costs more than the database's whole scan. Instead
the database folds each column into one value — SQLite a comma-separated text
(`group_concat`, parsed by numpy in C), PostgreSQL a big-endian binary string
(`string_agg(int8send(...))`, read with `np.frombuffer`) — so no Python object is made per row.
All columns of one query are folded in the same pass, so they stay aligned row by row.
"""
from __future__ import annotations

import queue
import threading
from typing import Iterable, Iterator, TypeVar

import numpy as np
from sqlalchemy import Connection, Float, Select, cast, func, literal_column, select

from plugin.store import is_postgres

T = TypeVar("T")


def fetch_arrays(conn: Connection, query: Select, floats: Iterable[str] = ()) -> dict[str, np.ndarray]:
    """Every column of `query` (labelled) as a numpy array: int64, or float64 with NaN for NULL
    for the names in `floats`. Integer columns must not be NULL."""
    floats = set(floats)
    sub = query.subquery()
    postgres = is_postgres(conn)
    parts = []
    for column in sub.c:
        is_float = column.name in floats
        if postgres:
            value = (func.float8send(func.coalesce(cast(column, Float), literal_column("'NaN'::float8")))
                     if is_float else func.int8send(column))
            parts.append(func.string_agg(value, literal_column("''::bytea")).label(column.name))
        else:
            value = func.ifnull(column, "nan") if is_float else column
            parts.append(func.group_concat(value).label(column.name))
    row = conn.execute(select(*parts)).one()
    arrays = {}
    for column, folded in zip(sub.c, row):
        dtype = np.float64 if column.name in floats else np.int64
        if folded is None:
            arrays[column.name] = np.empty(0, dtype=dtype)
        elif postgres:
            arrays[column.name] = np.frombuffer(folded, dtype=">f8" if dtype is np.float64 else ">i8").astype(dtype)
        else:
            arrays[column.name] = np.fromstring(folded, dtype=dtype, sep=",")
    return arrays


def prefetch(items: Iterator[T], depth: int = 2) -> Iterator[T]:
    """Produce `items` in a background thread, `depth` ahead of the consumer.

    Database drivers release the GIL while a query runs, so reading chunk i+1 overlaps
    with numpy and LightGBM work on chunk i. Errors are re-raised in the consumer.
    """
    buffer: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def produce() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                buffer.put((item, None))
            buffer.put((done, None))
        except BaseException as error:  # handed to the consumer, which re-raises it
            buffer.put((done, error))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()  # releases the reader's connection in the thread that used it

    worker = threading.Thread(target=produce, name="likely-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            item, error = buffer.get()
            if error is not None:
                raise error
            if item is done:
                return
            yield item
    finally:
        stop.set()
        while worker.is_alive():  # unblock a producer waiting on a full buffer
            try:
                buffer.get(timeout=0.05)
            except queue.Empty:
                pass
        worker.join()
