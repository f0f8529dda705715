"""Deterministic keys, computable alike in Python, SQLite and PostgreSQL.

- A message's idempotency key is uuid5(NAMESPACE, "campaign:run:user:channel"): PostgreSQL
  computes it with uuid-ossp's `uuid_generate_v5`, SQLite with the function registered here,
  and both equal Python's `uuid.uuid5`.
- A user's control-group bucket in a campaign is the first 32 bits of md5("campaign:user"),
  so the same user is always in, or always out of, a campaign's control group.
"""
from __future__ import annotations

import hashlib
import uuid
from typing import Sequence

from sqlalchemy import BigInteger, ColumnElement, Connection, any_, literal
from sqlalchemy.dialects.postgresql import ARRAY

NAMESPACE = uuid.UUID("6f1c3c52-4e0b-5d53-9a57-6c696b656c79")  # likely's own namespace
_NS = NAMESPACE.bytes
BUCKETS = 2 ** 32


def message_name(campaign_id: int, run_id: int, user_id: int, channel: str) -> str:
    return f"{campaign_id}:{run_id}:{user_id}:{channel}"


def idempotency_key(campaign_id: int, run_id: int, user_id: int, channel: str) -> str:
    return str(uuid.uuid5(NAMESPACE, message_name(campaign_id, run_id, user_id, channel)))


def _uuid5(name: str) -> str:
    # uuid.uuid5 without building a UUID object: this runs once per planned message on SQLite.
    h = hashlib.sha1(_NS + str(name).encode()).hexdigest()
    variant = "89ab"[int(h[16], 16) & 0x3]
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{variant}{h[17:20]}-{h[20:32]}"


def control_bucket(campaign_id: int, user_id: int) -> int:
    return _bucket(f"{campaign_id}:{user_id}")


def _bucket(name: str) -> int:
    return int(hashlib.md5(str(name).encode()).hexdigest()[:8], 16)


def in_control(campaign_id: int, user_id: int, share: float) -> bool:
    return control_bucket(campaign_id, user_id) < threshold(share)


def threshold(share: float) -> int:
    return int(round(share * BUCKETS))


def register_sqlite(conn: Connection) -> None:
    """Make `likely_uuid5(name)` and `likely_bucket(name)` available on this SQLite connection."""
    driver = conn.connection.driver_connection
    driver.create_function("likely_uuid5", 1, _uuid5, deterministic=True)
    driver.create_function("likely_bucket", 1, _bucket, deterministic=True)


def user_id_in(column: ColumnElement, ids: Sequence[int], postgres: bool) -> ColumnElement:
    """`column IN ids`; on PostgreSQL `= ANY(array)`: one parameter instead of thousands to
    render, send and parse on every delivery pass."""
    if postgres:
        return column == any_(literal(list(ids), ARRAY(BigInteger)))
    return column.in_(list(ids))
