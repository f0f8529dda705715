"""GET /v1/jobs: the caller's workspace's job run log, newest first."""
from __future__ import annotations

from flask import jsonify, request
from marshmallow import Schema, fields, validate

from plugin import store
from plugin.api import v1
from plugin.api.docs import api_doc
from plugin.api.requests import load
from plugin.errors import CHOICE_ERROR
from plugin.ids import Id
from plugin.jobs import runlog

bp = v1.blueprint("jobs", __name__, "/jobs")

OUTCOMES = ("running", "ok", "failed", "skipped")


class JobRunsQuerySchema(Schema):
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))
    before = Id(strict=False,
                metadata={"description": "a run id: list runs older than it (next_before of a page)"})
    kind = fields.String(validate=validate.Length(min=1, max=64))
    outcome = fields.String(validate=validate.OneOf(OUTCOMES, error=CHOICE_ERROR))
    job_id = fields.String(validate=validate.Length(min=1, max=191))


class JobRunSchema(Schema):
    id = fields.Integer()
    job_id = fields.String()
    kind = fields.String()
    workspace = fields.String()
    run_key = fields.String(metadata={"description": "the scheduled time (UTC) or manual:<id>"})
    scheduled_at = fields.DateTime(allow_none=True)
    started_at = fields.DateTime()
    finished_at = fields.DateTime(allow_none=True)
    duration_seconds = fields.Float(allow_none=True)
    outcome = fields.String(metadata={"enum": list(OUTCOMES)})
    counts = fields.Dict(keys=fields.String(), allow_none=True)
    error = fields.String(allow_none=True)


class JobRunPageSchema(Schema):
    runs = fields.List(fields.Nested(JobRunSchema))
    next_before = fields.Integer(allow_none=True)


@bp.get("")
@api_doc(summary="The workspace's job run log, newest first", tags=["jobs"], query=JobRunsQuerySchema,
         responses={200: JobRunPageSchema})
def list_job_runs():
    query = load(JobRunsQuerySchema(), request.args.to_dict())
    workspace = v1.workspace()
    with store.engine().connect() as conn:
        page = runlog.list_runs(conn, workspace.id, limit=query["limit"], before=query.get("before"),
                                kind=query.get("kind"), outcome=query.get("outcome"), job_id=query.get("job_id"))
    runs = [{**run, "duration_seconds": runlog.duration_seconds(run)} for run in page.runs]
    return jsonify(JobRunPageSchema().dump({"runs": runs, "next_before": page.next_before}))
