"""Segments: an audience materialised as numbered snapshots of its members.

Membership is versioned (see `segment_members` in the store's tables): a refresh writes
snapshot v + 1 beside v in one transaction, set-based, so readers paging through v keep
seeing exactly v, and "who was added or removed since version N" is a query, the basis of
diff syncs to destinations. The last `RETAINED_VERSIONS` snapshots stay readable.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    MetaData,
    Row,
    Select,
    Table,
    and_,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    update,
)

from plugin.audiences.compiler import compile_audience
from plugin.audiences.targeting import check_targetable
from plugin.errors import LikelyError, NotFound, ValidationFailed
from plugin.store import is_postgres
from plugin.store.tables import segment_members, segment_versions, segments, users
from plugin.store.types import utcnow

RETAINED_VERSIONS = 30
ANALYZE_AFTER_ROWS = 10_000

# Per-session scratch table: the refreshed audience is computed once and both the removes and
# the adds are taken from it, so they describe one consistent state of the store.
_scratch = Table("likely_refresh_audience", MetaData(), Column("id", BigInteger, primary_key=True),
                 prefixes=["TEMPORARY"])


class VersionGone(LikelyError):
    status, code = 410, "segment_version_expired"


@dataclass(frozen=True)
class MembershipChanges:
    """Store user ids added to and removed from a segment between two snapshots."""

    segment_id: int
    since_version: int
    version: int
    added: Select
    removed: Select


def members_at(version: int, table=segment_members):
    """Rows of `table` (segment_members or an alias) that are members in snapshot `version`."""
    return and_(table.c.added_version <= version,
                or_(table.c.removed_version.is_(None), table.c.removed_version > version))


def get_segment(conn: Connection, workspace_id: int, segment_id: int, lock: bool = False) -> Row:
    """The segment, or 404 (also for another workspace's segment)."""
    query = select(segments).where(segments.c.id == segment_id, segments.c.workspace_id == workspace_id)
    if lock and is_postgres(conn):
        query = query.with_for_update()  # concurrent refreshes of one segment take turns
    row = conn.execute(query).first()
    if row is None:
        raise NotFound(f"segment {segment_id} does not exist", code="segment_not_found")
    return row


def list_segments(conn: Connection, workspace_id: int) -> list[Row]:
    return list(conn.execute(select(segments).where(segments.c.workspace_id == workspace_id)
                             .order_by(segments.c.id)))


def create_segment(conn: Connection, workspace_id: int, name: str, node: dict, now_ts: int,
                   host_audience_id: str | None = None) -> Row:
    """Snapshot 1 of a parsed tree, written with one INSERT … SELECT (inside the caller's transaction)."""
    check_targetable(conn, workspace_id, node)
    now = utcnow()
    segment_id = conn.execute(insert(segments).values(
        workspace_id=workspace_id, name=name, definition=node, host_audience_id=host_audience_id,
        version=1, oldest_version=1, size=0, created_at=now, updated_at=now, refreshed_at=now)
        .returning(segments.c.id)).scalar()
    audience = compile_audience(node, workspace_id, now_ts).subquery("audience")
    size = conn.execute(insert(segment_members).execution_options(preserve_rowcount=True).from_select(
        ["segment_id", "user_id", "external_id", "added_version"],
        select(literal(segment_id), audience.c.id, users.c.external_id, literal(1))
        .join_from(audience, users, users.c.id == audience.c.id)
        # Written in the order exports read: on PostgreSQL a page then holds neighbouring
        # members, not one member per page read.
        .order_by(audience.c.id))).rowcount
    conn.execute(update(segments).where(segments.c.id == segment_id).values(size=size))
    _record(conn, segment_id, 1, node, size, added=size, removed=0)
    _refresh_statistics(conn, size)
    return get_segment(conn, workspace_id, segment_id)


def refresh_segment(conn: Connection, workspace_id: int, segment_id: int, now_ts: int,
                    node: dict | None = None, name: str | None = None) -> tuple[Row, dict[str, int]]:
    """Snapshot v + 1 (optionally of a new definition); returns the segment and its adds/removes."""
    segment = get_segment(conn, workspace_id, segment_id, lock=True)
    node = segment.definition if node is None else node
    check_targetable(conn, workspace_id, node)
    version = segment.version + 1
    # Created and dropped inside the transaction: a failure rolls both back on either backend.
    _scratch.create(conn, checkfirst=False)
    audience = compile_audience(node, workspace_id, now_ts).subquery("audience")
    size = conn.execute(insert(_scratch).execution_options(preserve_rowcount=True)
                        .from_select(["id"], select(audience.c.id))).rowcount
    live = and_(segment_members.c.segment_id == segment_id, segment_members.c.removed_version.is_(None))
    removed = conn.execute(update(segment_members).where(
        live, ~select(_scratch.c.id).where(_scratch.c.id == segment_members.c.user_id).exists())
        .values(removed_version=version)).rowcount
    current = segment_members.alias("current")
    added = conn.execute(insert(segment_members).execution_options(preserve_rowcount=True).from_select(
        ["segment_id", "user_id", "external_id", "added_version"],
        select(literal(segment_id), _scratch.c.id, users.c.external_id, literal(version))
        .join_from(_scratch, users, users.c.id == _scratch.c.id)
        .where(~select(current.c.user_id).where(
            current.c.segment_id == segment_id, current.c.user_id == _scratch.c.id,
            current.c.removed_version.is_(None)).exists())
        .order_by(_scratch.c.id))).rowcount
    _scratch.drop(conn, checkfirst=False)
    oldest = max(1, version - RETAINED_VERSIONS + 1)
    # Stretches that ended at or before the oldest kept snapshot belong to no readable snapshot.
    conn.execute(delete(segment_members).where(segment_members.c.segment_id == segment_id,
                                               segment_members.c.removed_version <= oldest))
    values: dict[str, Any] = {"version": version, "oldest_version": oldest, "size": size,
                              "definition": node, "updated_at": utcnow(), "refreshed_at": utcnow()}
    if name is not None:
        values["name"] = name
    conn.execute(update(segments).where(segments.c.id == segment_id).values(**values))
    _record(conn, segment_id, version, node, size, added=added, removed=removed)
    _refresh_statistics(conn, added + removed)
    return get_segment(conn, workspace_id, segment_id), {"added": added, "removed": removed}


def _refresh_statistics(conn: Connection, changed_rows: int) -> None:
    """After a large write, let PostgreSQL's planner see the new membership at once.

    With statistics from when the table was smaller (autoanalyze comes up to a minute later),
    it plans a page of members as a scan of every later member plus a sort — each page then
    costs as much as the whole segment. SQLite's clustered table leaves it no such choice.
    """
    if is_postgres(conn) and changed_rows >= ANALYZE_AFTER_ROWS:
        conn.execute(text("ANALYZE segment_members"))  # ~30k sampled rows: a fraction of the write


def _record(conn: Connection, segment_id: int, version: int, node: dict, size: int, *, added: int,
            removed: int) -> None:
    conn.execute(insert(segment_versions).values(segment_id=segment_id, version=version, definition=node,
                                                 size=size, added=added, removed=removed,
                                                 created_at=utcnow()))


def delete_segment(conn: Connection, workspace_id: int, segment_id: int) -> None:
    get_segment(conn, workspace_id, segment_id)
    # Explicit rather than ON DELETE CASCADE, so it never depends on SQLite's foreign_keys pragma.
    conn.execute(delete(segment_members).where(segment_members.c.segment_id == segment_id))
    conn.execute(delete(segment_versions).where(segment_versions.c.segment_id == segment_id))
    conn.execute(delete(segments).where(segments.c.id == segment_id))


def readable_version(segment: Row, version: int | None) -> int:
    """The snapshot to read: the current one by default; 404 if not yet made, 410 if pruned."""
    if version is None:
        return segment.version
    if version < 1 or version > segment.version:
        raise NotFound(f"segment {segment.id} has no version {version}; the current one is {segment.version}",
                       code="segment_version_not_found")
    if version < segment.oldest_version:
        raise VersionGone(f"version {version} of segment {segment.id} is no longer kept; the oldest is "
                          f"{segment.oldest_version}: export the current version in full instead",
                          details={"oldest_version": segment.oldest_version, "version": segment.version})
    return version


def members_query(segment_id: int, version: int, after_user_id: int = 0) -> Select:
    """(store id, host id) of the snapshot's members after a store id, in store-id order (keyset)."""
    return (select(segment_members.c.user_id, segment_members.c.external_id)
            .where(segment_members.c.segment_id == segment_id, members_at(version),
                   segment_members.c.user_id > after_user_id)
            .order_by(segment_members.c.user_id))


def membership_changes(conn: Connection, workspace_id: int, segment_id: int, since_version: int,
                       until_version: int | None = None) -> MembershipChanges:
    """Who joined and who left between snapshot `since_version` and `until_version` (default: current).

    A user who left and came back in between is in neither list. Each list is a SELECT of
    `user_id` (store id) and `external_id` (host id).
    """
    segment = get_segment(conn, workspace_id, segment_id)
    since = readable_version(segment, since_version)
    until = readable_version(segment, until_version)
    if since > until:
        raise ValidationFailed("since_version is after until_version", details={"until": ["Must not be before since."]})
    then, now = segment_members.alias("then"), segment_members.alias("now")
    sm = segment_members

    def was_member(table, version):
        return select(table.c.user_id).where(table.c.segment_id == segment_id, table.c.user_id == sm.c.user_id,
                                             members_at(version, table)).exists()
    # Joiners start a stretch after `since`; leavers end, in (since, until], one that `since` saw.
    added = select(sm.c.user_id, sm.c.external_id).where(
        sm.c.segment_id == segment_id, sm.c.added_version > since, members_at(until), ~was_member(then, since))
    removed = select(sm.c.user_id, sm.c.external_id).where(
        sm.c.segment_id == segment_id, sm.c.removed_version > since, sm.c.removed_version <= until,
        sm.c.added_version <= since, ~was_member(now, until))
    return MembershipChanges(segment_id, since, until, added, removed)


def count(conn: Connection, query: Select) -> int:
    return conn.execute(select(func.count()).select_from(query.subquery())).scalar()
