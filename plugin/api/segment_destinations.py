"""/v1/segments/{id}/destinations: where a segment is synced, by difference, and its sync log."""
from __future__ import annotations

from flask import jsonify
from marshmallow import RAISE, Schema, fields, validate

from plugin import store
from plugin.api.docs import api_doc
from plugin.api.requests import json_body, load
from plugin.api.v1 import blueprint, workspace
from plugin.campaigns import syncs
from plugin.campaigns.responses import DestinationOut, SyncLogOut
from plugin.errors import CHOICE_ERROR

bp = blueprint("segment_destinations", __name__, "/segments")


class DestinationInput(Schema):
    class Meta:
        unknown = RAISE

    connector = fields.String(required=True, validate=validate.Length(1, 64),
                              metadata={"description": "braze, clevertap, meta_custom_audience, google_customer_match"})
    audience_id = fields.String(required=True, validate=validate.Length(1, 255),
                                metadata={"description": "The provider's audience / cohort id."})
    mode = fields.String(load_default="mirror", validate=validate.OneOf(syncs.MODES, error=CHOICE_ERROR))


class DestinationListOut(Schema):
    destinations = fields.List(fields.Nested(DestinationOut), required=True)


class SyncListOut(Schema):
    syncs = fields.List(fields.Nested(SyncLogOut), required=True)


@bp.post("/<int:segment_id>/destinations")
@api_doc(summary="Sync a segment to a destination (by difference)", tags=["segments"], body=DestinationInput,
         responses={201: DestinationOut})
def attach(segment_id: int):
    data = load(DestinationInput(), json_body())
    return jsonify(DestinationOut().dump(syncs.attach(store.engine(), workspace().id, segment_id, **data))), 201


@bp.get("/<int:segment_id>/destinations")
@api_doc(summary="A segment's destinations and their last sync", tags=["segments"],
         responses={200: DestinationListOut})
def index(segment_id: int):
    with store.engine().connect() as conn:
        return jsonify({"destinations": DestinationOut(many=True).dump(
            syncs.list_destinations(conn, workspace().id, segment_id))})


@bp.delete("/<int:segment_id>/destinations/<int:destination_id>")
@api_doc(summary="Stop syncing a segment to a destination", tags=["segments"], responses={204: None})
def detach(segment_id: int, destination_id: int):
    syncs.detach(store.engine(), workspace().id, segment_id, destination_id)
    return "", 204


@bp.post("/<int:segment_id>/sync")
@api_doc(summary="Sync every destination of a segment now", tags=["segments"], responses={200: SyncListOut})
def sync_segment(segment_id: int):
    """Sync every destination of the segment now."""
    with store.engine().connect() as conn:
        destinations = syncs.list_destinations(conn, workspace().id, segment_id)
    logs = [syncs.sync_destination(store.engine(), workspace().id, segment_id, d["id"]) for d in destinations]
    return jsonify({"syncs": SyncLogOut(many=True).dump(logs)})


@bp.post("/<int:segment_id>/destinations/<int:destination_id>/sync")
@api_doc(summary="Sync one destination now", tags=["segments"], responses={200: SyncLogOut})
def sync_one(segment_id: int, destination_id: int):
    return jsonify(SyncLogOut().dump(syncs.sync_destination(store.engine(), workspace().id, segment_id,
                                                            destination_id)))


@bp.get("/<int:segment_id>/destinations/<int:destination_id>/syncs")
@api_doc(summary="A destination's sync log", tags=["segments"], responses={200: SyncListOut})
def log(segment_id: int, destination_id: int):
    with store.engine().connect() as conn:
        return jsonify({"syncs": SyncLogOut(many=True).dump(
            syncs.sync_log(conn, workspace().id, segment_id, destination_id))})
