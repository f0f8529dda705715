"""/v1/segments: materialised audiences, their members (paged or streamed) and their changes."""
from __future__ import annotations

import base64
import binascii
import time

from flask import Response, jsonify, request
from marshmallow import EXCLUDE, Schema, fields, validate
from sqlalchemy import select

from plugin import store
from plugin.api import v1
from plugin.api.docs import STANDARD_ERRORS, api_doc
from plugin.api.requests import json_body, load
from plugin.audiences import exports, segments
from plugin.audiences.schema import AudienceDefinition
from plugin.errors import CHOICE_ERROR, ValidationFailed
from plugin.ids import MAX_ID, MAX_INT64, MIN_ID, Id
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


class SegmentListSchema(Schema):
    segments = fields.List(fields.Nested(SegmentSchema), required=True)


class SegmentDetailSchema(SegmentSchema):
    versions = fields.List(fields.Nested(SegmentVersionSchema))


class SegmentRefreshSchema(SegmentSchema):
    added = fields.Integer(metadata={"description": "Members added by this refresh."})
    removed = fields.Integer(metadata={"description": "Members removed by this refresh."})


class MembersQuerySchema(Schema):
    class Meta:
        unknown = EXCLUDE

    format = fields.String(validate=validate.OneOf(list(FORMATS), error=CHOICE_ERROR),
                           metadata={"description": "json (a page), ndjson or csv (the whole snapshot); "
                                                    "default from the Accept header"})
    limit = fields.Integer(load_default=DEFAULT_PAGE, validate=validate.Range(1, MAX_PAGE))
    version = Id(strict=False, metadata={"description": "A snapshot (default: current)."})
    cursor = fields.String(validate=validate.Length(1, 200), metadata={"description": "next_cursor of the previous page"})


class ChangesQuerySchema(Schema):
    class Meta:
        unknown = EXCLUDE

    since = Id(strict=False, required=True)
    until = Id(strict=False, metadata={"description": "Default: the current snapshot."})


class MemberSchema(Schema):
    user_id = fields.String(required=True)


class MembersPageSchema(Schema):
    segment_id = fields.Integer(required=True)
    version = fields.Integer(required=True)
    members = fields.List(fields.Nested(MemberSchema), required=True)
    next_cursor = fields.String(allow_none=True, required=True)


VERSION_HEADER = {"description": "The snapshot the members belong to", "schema": {"type": "string"}}


def _segment_json(row, **extra) -> dict:
    return {**SegmentSchema().dump(row._mapping), **extra}


@bp.post("")
@api_doc(summary="Create a segment: snapshot 1 of an audience", tags=["segments"], body=SegmentCreateSchema,
         responses={201: SegmentSchema})
def create():
    data = load(SegmentCreateSchema(), json_body())
    with store.transaction(store.engine()) as conn:
        row = segments.create_segment(conn, v1.workspace().id, data["name"], data["definition"], int(time.time()))
    return jsonify(_segment_json(row)), 201


@bp.get("")
@api_doc(summary="List the workspace's segments", tags=["segments"], responses={200: SegmentListSchema})
def index():
    with store.engine().connect() as conn:
        rows = segments.list_segments(conn, v1.workspace().id)
    return jsonify({"segments": [_segment_json(r) for r in rows]})


@bp.get("/<int:segment_id>")
@api_doc(summary="A segment and its snapshots, newest first", tags=["segments"], responses={200: SegmentDetailSchema})
def show(segment_id: int):
    with store.engine().connect() as conn:
        row = segments.get_segment(conn, v1.workspace().id, segment_id)
        versions = conn.execute(select(segment_versions).where(segment_versions.c.segment_id == segment_id)
                                .order_by(segment_versions.c.version.desc()).limit(segments.RETAINED_VERSIONS))
        history = SegmentVersionSchema(many=True).dump([v._mapping for v in versions])
    return jsonify(_segment_json(row, versions=history))


@bp.post("/<int:segment_id>/refresh")
@api_doc(summary="Refresh a segment to a new snapshot", tags=["segments"], responses={200: SegmentRefreshSchema})
def refresh(segment_id: int):
    with store.transaction(store.engine()) as conn:
        row, diff = segments.refresh_segment(conn, v1.workspace().id, segment_id, int(time.time()))
    return jsonify(_segment_json(row, **diff))


@bp.delete("/<int:segment_id>")
@api_doc(summary="Delete a segment", tags=["segments"], responses={204: None})
def remove(segment_id: int):
    with store.transaction(store.engine()) as conn:
        segments.delete_segment(conn, v1.workspace().id, segment_id)
    return "", 204


def _format(chosen: str | None) -> str:
    """?format= wins; otherwise the Accept header picks (JSON by default)."""
    if chosen is not None:
        return chosen
    best = request.accept_mimetypes.best_match(list(FORMATS.values()), default="application/json")
    return next(name for name, mime in FORMATS.items() if mime == best)


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
@api_doc(summary="A segment's members: a page (JSON) or the whole snapshot streamed (NDJSON, CSV)",
         tags=["segments"], query=MembersQuerySchema, errors=(*STANDARD_ERRORS, 410),
         responses={200: {"description": "A page, or the snapshot streamed",
                          "headers": {"X-Segment-Version": VERSION_HEADER},
                          "content": {"application/json": {"schema": MembersPageSchema},
                                      "application/x-ndjson": {"schema": {"type": "string"}},
                                      "text/csv": {"schema": {"type": "string"}}}}})
def members(segment_id: int):
    """A page (JSON, keyset cursor) or the whole snapshot streamed as NDJSON or CSV.

    A cursor pins the snapshot version, so paging goes on through the same snapshot
    while refreshes write newer ones.
    """
    query = load(MembersQuerySchema(), request.args.to_dict())
    fmt = _format(query.get("format"))
    limit, version, after = query["limit"], query.get("version"), 0
    if query.get("cursor"):
        pinned, after = decode_cursor(query["cursor"])
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
@api_doc(summary="Members added and removed between two snapshots (NDJSON)", tags=["segments"],
         query=ChangesQuerySchema, errors=(*STANDARD_ERRORS, 410),
         responses={200: {"description": "One {change, user_id} object per line",
                          "headers": {"X-Segment-Version": VERSION_HEADER},
                          "content": {"application/x-ndjson": {"schema": {"type": "string"}}}}})
def changes(segment_id: int):
    """Members added and removed since snapshot `since` (to `until` or the current one), as NDJSON."""
    query = load(ChangesQuerySchema(), request.args.to_dict())
    engine = store.engine()
    with engine.connect() as conn:
        diff = segments.membership_changes(conn, v1.workspace().id, segment_id, query["since"], query.get("until"))
    return Response(exports.stream_changes(engine, diff), mimetype=FORMATS["ndjson"],
                    headers={"X-Segment-Version": str(diff.version), "X-Since-Version": str(diff.since_version)})
