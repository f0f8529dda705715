"""/v1/segments: materialised audiences, their members (paged or streamed) and their changes."""
from __future__ import annotations

import base64
import binascii
import time

from flask import Response, jsonify, request
from marshmallow import Schema, fields, validate
from sqlalchemy import select

from plugin import store
from plugin.api import v1
from plugin.api.requests import json_body, load
from plugin.audiences import exports, segments
from plugin.audiences.schema import AudienceDefinition
from plugin.errors import ValidationFailed
from plugin.ids import MAX_ID, MAX_INT64, MIN_ID
from plugin.store.tables import segment_versions

bp = v1.blueprint("segments", __name__, "/segments")
DEFAULT_PAGE, MAX_PAGE = 1000, 10_000
FORMATS = {"json": "application/json", "ndjson": "application/x-ndjson", "csv": "text/csv"}


class SegmentCreateSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(1, 255))
    definition = AudienceDefinition(required=True)


class SegmentSchema(Schema):
    id = fields.Integer()
    name = fields.String()
    definition = fields.Dict()
    host_audience_id = fields.String(allow_none=True)
    version = fields.Integer(metadata={"description": "The current snapshot."})
    oldest_version = fields.Integer(metadata={"description": "The oldest snapshot still readable."})
    size = fields.Integer()
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    refreshed_at = fields.DateTime()


class SegmentVersionSchema(Schema):
    version = fields.Integer()
    size = fields.Integer()
    added = fields.Integer()
    removed = fields.Integer()
    created_at = fields.DateTime()


def _segment_json(row, **extra) -> dict:
    return {**SegmentSchema().dump(row._mapping), **extra}


@bp.post("")
def create():
    data = load(SegmentCreateSchema(), json_body())
    with store.transaction(store.engine()) as conn:
        row = segments.create_segment(conn, v1.workspace().id, data["name"], data["definition"], int(time.time()))
    return jsonify(_segment_json(row)), 201


@bp.get("")
def index():
    with store.engine().connect() as conn:
        rows = segments.list_segments(conn, v1.workspace().id)
    return jsonify({"segments": [_segment_json(r) for r in rows]})


@bp.get("/<int:segment_id>")
def show(segment_id: int):
    with store.engine().connect() as conn:
        row = segments.get_segment(conn, v1.workspace().id, segment_id)
        versions = conn.execute(select(segment_versions).where(segment_versions.c.segment_id == segment_id)
                                .order_by(segment_versions.c.version.desc()).limit(segments.RETAINED_VERSIONS))
        history = SegmentVersionSchema(many=True).dump([v._mapping for v in versions])
    return jsonify(_segment_json(row, versions=history))


@bp.post("/<int:segment_id>/refresh")
def refresh(segment_id: int):
    with store.transaction(store.engine()) as conn:
        row, diff = segments.refresh_segment(conn, v1.workspace().id, segment_id, int(time.time()))
    return jsonify(_segment_json(row, **diff))


@bp.delete("/<int:segment_id>")
def remove(segment_id: int):
    with store.transaction(store.engine()) as conn:
        segments.delete_segment(conn, v1.workspace().id, segment_id)
    return "", 204


def _format() -> str:
    chosen = request.args.get("format")
    if chosen is not None:
        if chosen not in FORMATS:
            raise ValidationFailed("format is json, ndjson or csv", details={"format": [f"Unknown format {chosen!r}."]})
        return chosen
    best = request.accept_mimetypes.best_match(list(FORMATS.values()), default="application/json")
    return next(name for name, mime in FORMATS.items() if mime == best)


def _int_arg(name: str, low: int, high: int = MAX_ID) -> int | None:
    raw = request.args.get(name)
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ValidationFailed(f"{name} must be a whole number", details={name: ["Not a valid integer."]}) from None
    if not low <= value <= high:  # within the store's integers: never a 500 from the driver
        raise ValidationFailed(f"{name} is out of range", details={name: [f"Must be between {low} and {high}."]})
    return value


def encode_cursor(version: int, after: int) -> str:
    return base64.urlsafe_b64encode(f"{version}:{after}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, int]:
    try:
        version, after = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode().split(":")
        version, after = int(version), int(after)
        if not (MIN_ID <= version <= MAX_ID and 0 <= after <= MAX_INT64):  # after: a user id, 64-bit
            raise ValueError("out of range")
        return version, after
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise ValidationFailed("the cursor is not one this API returned", code="invalid_cursor",
                               details={"cursor": ["Not a valid cursor."]}) from None


@bp.get("/<int:segment_id>/members")
def members(segment_id: int):
    """A page (JSON, keyset cursor) or the whole snapshot streamed as NDJSON or CSV.

    A cursor pins the snapshot version, so paging goes on through the same snapshot
    while refreshes write newer ones.
    """
    fmt = _format()
    limit = _int_arg("limit", 1, MAX_PAGE) or DEFAULT_PAGE
    version, after = _int_arg("version", 1), 0
    if request.args.get("cursor"):
        pinned, after = decode_cursor(request.args["cursor"])
        if version is not None and version != pinned:
            raise ValidationFailed("the cursor belongs to another version", code="invalid_cursor")
        version = pinned
    engine = store.engine()
    with engine.connect() as conn:
        segment = segments.get_segment(conn, v1.workspace().id, segment_id)
        version = segments.readable_version(segment, version)
        if fmt == "json":
            rows = conn.execute(segments.members_query(segment_id, version, after).limit(limit + 1)).all()
    headers = {"X-Segment-Version": str(version)}
    if fmt != "json":
        stream = exports.stream_members(engine, segment_id, version, after, fmt)
        if fmt == "csv":
            headers["Content-Disposition"] = f'attachment; filename="segment-{segment_id}-v{version}.csv"'
        return Response(stream, mimetype=FORMATS[fmt], headers=headers)
    more = len(rows) > limit
    rows = rows[:limit]
    body = {"segment_id": segment_id, "version": version, "members": [{"user_id": r.external_id} for r in rows],
            "next_cursor": encode_cursor(version, rows[-1].user_id) if more else None}
    return jsonify(body), 200, headers


@bp.get("/<int:segment_id>/changes")
def changes(segment_id: int):
    """Members added and removed since snapshot `since` (to `until` or the current one), as NDJSON."""
    since = _int_arg("since", 1)
    if since is None:
        raise ValidationFailed("give since=<version>", details={"since": ["Missing data for required field."]})
    engine = store.engine()
    with engine.connect() as conn:
        diff = segments.membership_changes(conn, v1.workspace().id, segment_id, since, _int_arg("until", 1))
    return Response(exports.stream_changes(engine, diff), mimetype=FORMATS["ndjson"],
                    headers={"X-Segment-Version": str(diff.version), "X-Since-Version": str(diff.since_version)})
