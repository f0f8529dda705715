"""Synthetic users and scores for the campaign benchmark, bulk-loaded through the driver.

SQLite: executemany on the raw connection; PostgreSQL: COPY. Attributes look like a real
host's: email (some missing), consent flags (some withdrawn), push tokens, country.
"""
from __future__ import annotations

import json
import random
from datetime import datetime, timezone

from sqlalchemy import Engine, insert

from plugin.store import is_postgres, transaction
from plugin.store.tables import predictions
from plugin.store.types import utcnow

CHUNK = 50_000


def attributes(i: int, rng: random.Random) -> dict:
    a: dict = {"first_name": f"User{i}", "country": rng.choice(("FR", "DE", "US", "GB"))}
    if rng.random() < 0.95:
        a["email"] = f"user{i}@example.com"
    if rng.random() < 0.03:
        a["email_consent"] = False
    if rng.random() < 0.6:
        a["push_tokens"] = [f"token-{i}"]
    return a


def category(score: float) -> str:
    return "High" if score >= 75 else "Medium" if score >= 50 else "Low"


def load(engine: Engine, workspace_id: int, n: int, seed: int = 7) -> int:
    """Insert `n` users with scores of one new prediction; return the prediction id."""
    now = utcnow()
    with transaction(engine) as conn:
        prediction_id = conn.execute(insert(predictions).values(
            workspace_id=workspace_id, name="bench purchase", goal_event="purchase", window_days=7,
            categories={"type": "fixed", "bins": [{"name": "Low", "min": 0}, {"name": "Medium", "min": 50},
                                                  {"name": "High", "min": 75}]},
            schedule="daily", retrain_days=15, status="active", created_at=now, updated_at=now)
        ).inserted_primary_key[0]
    rng = random.Random(seed)
    stamp = datetime.now(timezone.utc).replace(tzinfo=None).isoformat(sep=" ")
    with engine.connect() as conn:
        raw = conn.connection.driver_connection
        cursor = raw.cursor()
        if not is_postgres(engine):
            cursor.execute("BEGIN")  # one transaction, not one per row (the engine runs autocommit)
        for start in range(0, n, CHUNK):
            ids = range(start + 1, min(n, start + CHUNK) + 1)
            user_rows = [(i, workspace_id, f"ext-{i}", json.dumps(attributes(i, rng)), stamp, stamp) for i in ids]
            score_rows = []
            for i in ids:
                s = round(min(100.0, rng.betavariate(1.2, 2.5) * 100), 2)
                score_rows.append((workspace_id, prediction_id, i, s, category(s), 1, 1_700_000_000))
            if is_postgres(engine):
                with cursor.copy("COPY users (id, workspace_id, external_id, attributes, created_at, updated_at) "
                                 "FROM STDIN") as copy:
                    for r in user_rows:
                        copy.write_row(r)
                with cursor.copy("COPY scores (workspace_id, prediction_id, user_id, score, category, model_id, "
                                 "scored_at) FROM STDIN") as copy:
                    for r in score_rows:
                        copy.write_row(r)
            else:
                cursor.executemany("INSERT INTO users (id, workspace_id, external_id, attributes, created_at, "
                                   "updated_at) VALUES (?, ?, ?, ?, ?, ?)", user_rows)
                cursor.executemany("INSERT INTO scores (workspace_id, prediction_id, user_id, score, category, "
                                   "model_id, scored_at) VALUES (?, ?, ?, ?, ?, ?, ?)", score_rows)
        raw.commit()
        if is_postgres(engine):
            cursor.execute("SELECT setval(pg_get_serial_sequence('users', 'id'), %s)", (n,))
            cursor.execute("ANALYZE users")
            cursor.execute("ANALYZE scores")
            raw.commit()
    return prediction_id
