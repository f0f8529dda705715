from flask import Blueprint, jsonify
from marshmallow import Schema, fields

from plugin import store
from plugin.api.docs import api_doc

bp = Blueprint("health", __name__)


class HealthSchema(Schema):
    status = fields.String(required=True, metadata={"enum": ["ok", "unavailable"]})
    store = fields.String(required=True, metadata={"enum": ["ok", "unreachable"]})
    reason = fields.String(metadata={"description": "The error's type when the store is unreachable."})


@bp.get("/healthz")
@api_doc(summary="Liveness and store reachability", tags=["meta"], security="none", errors=(),
         responses={200: HealthSchema, 503: HealthSchema})
def healthz():
    try:
        store.ping(store.engine())
    except Exception as error:  # the probe's whole point is to report, not raise
        return jsonify({"status": "unavailable", "store": "unreachable",
                        "reason": type(error).__name__}), 503
    return jsonify({"status": "ok", "store": "ok"})
