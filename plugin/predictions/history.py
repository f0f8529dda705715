"""A scoring run's per-user scores, kept compactly for backtests (`scoring_run_chunks`).

Per chunk: user ids ascending, delta-encoded as int64 (mostly 1s) and zlib-compressed; scores
as hundredths in uint16, zlib-compressed. A million users take about 2–3 MB.
"""
from __future__ import annotations

import zlib
from typing import Iterator

import numpy as np
from sqlalchemy import Connection, insert, select

from plugin.store.tables import scoring_run_chunks


def encode(user_ids: np.ndarray, scores: np.ndarray) -> tuple[bytes, bytes]:
    order = np.argsort(user_ids, kind="stable")
    ids = user_ids[order].astype("<i8")
    deltas = np.diff(ids, prepend=np.int64(0)).astype("<i8")
    hundredths = np.rint(scores[order] * 100).astype("<u2")
    return zlib.compress(deltas.tobytes(), 6), zlib.compress(hundredths.tobytes(), 6)


def decode(user_blob: bytes, score_blob: bytes) -> tuple[np.ndarray, np.ndarray]:
    ids = np.cumsum(np.frombuffer(zlib.decompress(user_blob), dtype="<i8")).astype(np.int64)
    scores = np.frombuffer(zlib.decompress(score_blob), dtype="<u2").astype(np.float64) / 100.0
    return ids, scores


def write_chunk(conn: Connection, run_id: int, seq: int, user_ids: np.ndarray, scores: np.ndarray) -> None:
    user_blob, score_blob = encode(user_ids, scores)
    conn.execute(insert(scoring_run_chunks).values(run_id=run_id, seq=seq, users=len(user_ids),
                                                   user_ids=user_blob, scores=score_blob))


def read_chunks(conn: Connection, run_id: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(user ids, scores) per chunk, one chunk in memory at a time."""
    seqs = conn.execute(select(scoring_run_chunks.c.seq).where(scoring_run_chunks.c.run_id == run_id)
                        .order_by(scoring_run_chunks.c.seq)).scalars().all()
    for seq in seqs:
        row = conn.execute(select(scoring_run_chunks.c.user_ids, scoring_run_chunks.c.scores)
                           .where(scoring_run_chunks.c.run_id == run_id, scoring_run_chunks.c.seq == seq)).one()
        yield decode(row.user_ids, row.scores)


def read_all(conn: Connection, run_id: int) -> tuple[np.ndarray, np.ndarray]:
    parts = list(read_chunks(conn, run_id))
    if not parts:
        return np.empty(0, np.int64), np.empty(0)
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
