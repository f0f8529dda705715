"""Exporting a prediction's current scores as CSV, keyed by the host's user ids."""
from __future__ import annotations

import csv
from typing import Any, TextIO

from sqlalchemy import Engine, select

from plugin.store.tables import scores, users

PAGE = 10_000
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(text: str) -> str:
    """A cell a spreadsheet would run as a formula, prefixed with ' so it opens as text (OWASP)."""
    return "'" + text if text and text.startswith(FORMULA_STARTS) else text


def write_scores_csv(engine: Engine, prediction: Any, out: TextIO) -> int:
    """`user_id,score,category`, highest scores first, streamed in pages; returns the rows written."""
    query = (select(users.c.external_id, scores.c.score, scores.c.category)
             .join(users, users.c.id == scores.c.user_id)
             .where(scores.c.prediction_id == prediction.id, users.c.workspace_id == prediction.workspace_id)
             .order_by(scores.c.score.desc(), users.c.external_id))
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["user_id", "score", "category"])
    written = 0
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=PAGE).execute(query)
        for page in result.partitions():
            writer.writerows((spreadsheet_safe(ext), score, spreadsheet_safe(category))
                             for ext, score, category in page)
            written += len(page)
    return written
