"""Synthetic users and events for bench/predict.py, bulk-loaded straight into the store's tables.

Users have a hidden propensity (which drives purchases) and activity level; a third churn
early. Events arrive in time order, as they would from a host. Secondary indexes are dropped
during the load and rebuilt after it, as an operator would for a one-off import.
"""
from __future__ import annotations

import sqlite3

import numpy as np
from sqlalchemy.engine import make_url

DAY = 86_400
DAYS = 150
EVENT_TYPES = ["session_start", "view_item", "search", "add_to_cart", "purchase", "open_email", "open_push",
               "wishlist"]
OTHER_WEIGHTS = np.array([0.3, 0.38, 0.1, 0.1, 0.0, 0.07, 0.04, 0.01])
COUNTRIES = np.array(["US", "GB", "DE", "FR", "BR", "IN", "ES", "CA"])
LANGUAGES = np.array(["en", "en", "de", "fr", "pt", "en", "es", "en"])
SECONDARY_INDEXES = {"ix_events_user_type_ts": "events (workspace_id, user_id, event_type_id, ts)",
                     "ix_events_type_ts": "events (workspace_id, event_type_id, ts)"}


def generate(users: int, events_per_user: int, end_ts: int, seed: int = 11):
    rng = np.random.default_rng(seed)
    start = end_ts - DAYS * DAY
    propensity = rng.normal(size=users)
    activity = np.exp(0.8 * rng.normal(size=users) + 0.3 * propensity)
    activity *= events_per_user / activity.mean()
    counts = rng.poisson(activity)
    user = np.repeat(np.arange(1, users + 1, dtype=np.int64), counts)
    first = rng.uniform(0, DAYS * 0.8, users)
    last = np.where(rng.random(users) < 0.33, rng.uniform(first, DAYS), DAYS)
    span = (last - first)[user - 1]
    ts = (start + (first[user - 1] + rng.random(len(user)) * span) * DAY).astype(np.int64)
    purchase_rate = 0.1 / (1 + np.exp(-1.6 * propensity + 1.0))
    is_purchase = rng.random(len(user)) < purchase_rate[user - 1]
    other = rng.choice(len(EVENT_TYPES), size=len(user), p=OTHER_WEIGHTS / OTHER_WEIGHTS.sum())
    event_type = np.where(is_purchase, EVENT_TYPES.index("purchase"), other) + 1
    order = np.argsort(ts, kind="stable")
    keep = ts[order] < end_ts
    order = order[keep]
    country = rng.integers(0, len(COUNTRIES), size=users)
    email = rng.random(users) < 0.85
    consent = email & (rng.random(users) < 0.7)
    push = rng.random(users) < 0.5
    attributes = [
        f'{{"country": "{COUNTRIES[c]}", "language": "{LANGUAGES[c]}", "email_consent": {"true" if k else "false"}'
        + (f', "email": "u{i}@example.com"' if e else "") + (', "push_tokens": ["t"], "push_consent": true' if p else "")
        + "}" for i, (c, e, k, p) in enumerate(zip(country.tolist(), email.tolist(), consent.tolist(), push.tolist()))]
    return user[order], event_type[order], ts[order], attributes


def load_data(url: str, users: int, events_per_user: int, end_ts: int) -> int:
    user, event_type, ts, attributes = generate(users, events_per_user, end_ts)
    if make_url(url).get_backend_name() == "sqlite":
        _load_sqlite(make_url(url).database, user, event_type, ts, attributes)
    else:
        _load_postgres(url, user, event_type, ts, attributes)
    return len(user)


def _load_sqlite(path: str, user, event_type, ts, attributes) -> None:
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")
    for name in SECONDARY_INDEXES:
        db.execute(f"DROP INDEX {name}")
    db.executemany("INSERT INTO event_types (id, workspace_id, name) VALUES (?, 1, ?)",
                   [(i + 1, n) for i, n in enumerate(EVENT_TYPES)])
    stamp = "2026-01-01 00:00:00.000000"
    db.executemany("INSERT INTO users (id, workspace_id, external_id, attributes, created_at, updated_at) "
                   "VALUES (?, 1, ?, ?, ?, ?)",
                   ((i + 1, f"user-{i + 1}", a, stamp, stamp) for i, a in enumerate(attributes)))
    db.executemany("INSERT INTO events (workspace_id, user_id, event_type_id, ts, event_key) VALUES (1, ?, ?, ?, ?)",
                   zip(user.tolist(), event_type.tolist(), ts.tolist(), range(len(user))))
    for name, definition in SECONDARY_INDEXES.items():
        db.execute(f"CREATE INDEX {name} ON {definition}")
    db.commit()
    db.close()


def _load_postgres(url: str, user, event_type, ts, attributes) -> None:
    import psycopg
    conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as db:
        for name in SECONDARY_INDEXES:
            db.execute(f"DROP INDEX {name}")
        with db.cursor() as cur:
            cur.executemany("INSERT INTO event_types (id, workspace_id, name) VALUES (%s, 1, %s)",
                            [(i + 1, n) for i, n in enumerate(EVENT_TYPES)])
            for start in range(0, len(attributes), 100_000):
                lines = "".join(f"{i + 1}\t1\tuser-{i + 1}\t{attributes[i]}\t2026-01-01 00:00:00+00\t"
                                f"2026-01-01 00:00:00+00\n" for i in range(start, min(start + 100_000, len(attributes))))
                with cur.copy("COPY users (id, workspace_id, external_id, attributes, created_at, updated_at) "
                              "FROM STDIN") as copy:
                    copy.write(lines)
            row = np.dtype([("n", ">i2"), ("l1", ">i4"), ("ws", ">i4"), ("l2", ">i4"), ("user", ">i8"),
                            ("l3", ">i4"), ("type", ">i4"), ("l4", ">i4"), ("ts", ">i8"), ("l5", ">i4"),
                            ("l6", ">i4"), ("key", ">i8")])
            for start in range(0, len(user), 1_000_000):
                part = slice(start, start + 1_000_000)
                rows = np.empty(len(user[part]), dtype=row)
                rows["n"], rows["l1"], rows["ws"], rows["l2"], rows["l3"] = 6, 4, 1, 8, 4
                rows["l4"], rows["l5"], rows["l6"] = 8, -1, 8
                rows["user"], rows["type"], rows["ts"] = user[part], event_type[part], ts[part]
                rows["key"] = np.arange(start, start + len(rows))
                with cur.copy("COPY events (workspace_id, user_id, event_type_id, ts, properties, event_key) "
                              "FROM STDIN (FORMAT BINARY)") as copy:
                    copy.write(b"PGCOPY\n\xff\r\n\x00" + bytes(8) + rows.tobytes() + b"\xff\xff")
        for name, definition in SECONDARY_INDEXES.items():
            db.execute(f"CREATE INDEX {name} ON {definition}")
        for table in ("users", "events", "event_types"):
            db.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
        db.execute("VACUUM ANALYZE")
