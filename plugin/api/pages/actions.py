"""The prediction page's JSON calls: the slider's preview, Create Segment, Create Campaign.

The /v1 API wants a bearer key, which a page does not have; these take the page session
instead, plus the page's CSRF token (`X-CSRF-Token`) and a JSON body. They call the same
functions as `/v1/audiences/preview`, `/v1/segments` and `/v1/campaigns` and answer the same
shapes. A demo or preview prediction still gets its preview figures (the page is analytics),
but segments and campaigns are refused with 403 `prediction_not_targetable`, as in /v1.
"""
from __future__ import annotations

import time
from functools import wraps
from typing import Any, Callable

from flask import g, jsonify, make_response
from marshmallow import fields, validate

from plugin import store
from plugin.api import csrf
from plugin.api.audiences import PREVIEW_RESPONSE, PreviewResponseSchema, population_cache
from plugin.api.docs import api_doc
from plugin.api.page_auth import frame_headers, page_workspace, session_workspace
from plugin.api.pages import figures
from plugin.api.pages.views import bp
from plugin.api.requests import json_body, load
from plugin.api.segments import SegmentSchema
from plugin.audiences import segments
from plugin.audiences.compiler import parse_definition
from plugin.audiences.preview import preview
from plugin.audiences.targeting import ensure_targetable
from plugin.campaigns import definitions as campaigns
from plugin.campaigns import presets
from plugin.campaigns.responses import CampaignOut
from plugin.campaigns.schema import CampaignInput, ScoreRange
from plugin.errors import Unauthorized, ValidationFailed
from plugin.predictions import definitions, scoring
from plugin.predictions.definitions import Prediction

ERRORS = (400, 401, 403, 404, 409, 415)
CSRF_NOTE = ("Page session (cookie) and the page's `X-CSRF-Token` header; `Content-Type: application/json`.")


class PageRangeRequest(ScoreRange):
    """A score range [min, max); max 100 includes a score of exactly 100."""


class PageSegmentRequest(ScoreRange):
    name = fields.String(validate=validate.Length(1, 255),
                         metadata={"description": "Default: the prediction's name and the range."})


class PageCampaignRequest(PageSegmentRequest):
    preset = fields.String(load_default="playbook", validate=validate.OneOf(tuple(presets.PRESETS)))


def page_json(view: Callable[..., Any]) -> Callable[..., Any]:
    """For a page's JSON calls: a session (else 401 JSON, not a redirect) and its CSRF token (else 403)."""
    @wraps(view)
    def guarded(*args: Any, **kwargs: Any):
        workspace = session_workspace()
        if workspace is None:
            raise Unauthorized("sign in first: open the page from the host again, or sign in at /login",
                               code="not_signed_in")
        csrf.require_token()
        g.workspace = workspace
        return frame_headers(make_response(view(*args, **kwargs)))
    return guarded


def score_tree(prediction_id: int, band: dict) -> dict:
    """The audience of a score range, as the filter language says it."""
    upper = {"lte": 100} if band["max"] >= 100 else {"lt": band["max"]}
    return {"filter": "event_likelihood_score", "prediction": prediction_id, "gte": band["min"], **upper}


def default_name(prediction: Prediction, band: dict) -> str:
    return f"{prediction.name} · score {band['min']:g}–{band['max']:g}"


@bp.post("/pages/predictions/<int:prediction_id>/preview")
@api_doc(summary="The slider: preview a score range of the prediction (page session)", tags=["pages"],
         security="page", description=CSRF_NOTE + " Answers as `POST /v1/audiences/preview`; demo and "
         "preview predictions are previewed too (analytics), unlike in /v1.",
         body=PageRangeRequest, responses={200: PreviewResponseSchema}, errors=ERRORS)
@page_json
def preview_range(prediction_id: int):
    band = load(PageRangeRequest(), json_body())
    workspace = page_workspace()
    with store.reading(store.engine()) as conn:
        definitions.get(conn, workspace.id, prediction_id)  # 404 for another workspace's
        node = parse_definition(score_tree(prediction_id, band))
        result = preview(conn, workspace.id, node, int(time.time()), cache=population_cache(),
                         targeting_only=False)
    return jsonify(PREVIEW_RESPONSE.dump(result))


@bp.post("/pages/predictions/<int:prediction_id>/segments")
@api_doc(summary="Create Segment: the users in a score range of the prediction (page session)",
         tags=["pages"], security="page", description=CSRF_NOTE + " Answers as `POST /v1/segments`.",
         body=PageSegmentRequest, responses={201: SegmentSchema}, errors=ERRORS)
@page_json
def create_segment(prediction_id: int):
    data = load(PageSegmentRequest(), json_body())
    workspace = page_workspace()
    with store.transaction(store.engine()) as conn:
        prediction = definitions.get(conn, workspace.id, prediction_id)
        node = parse_definition(score_tree(prediction_id, data))
        row = segments.create_segment(conn, workspace.id, data.get("name") or default_name(prediction, data),
                                      node, int(time.time()))
    return jsonify(SegmentSchema().dump(row._mapping)), 201


def tiers_for_range(preset: str, bands: list[dict], low: float, high: float) -> list[dict]:
    """The preset's category tiers whose category reaches into [low, high)."""
    reach = {b["name"] for b in bands if b["min"] < high and b["max"] > low}
    tiers = [t for t in presets.apply(preset, {}, None) if set(t["band"]["categories"]) & reach]
    if not tiers:
        names = ", ".join(b["name"] for b in bands) or "none yet"
        raise ValidationFailed(f"the {preset} preset's tiers are the categories Low, Medium and High; this "
                               f"prediction's categories in that range are: {names}", code="preset_not_applicable",
                               details={"preset": ["No tier of the preset falls in the selected range."]})
    return tiers


@bp.post("/pages/predictions/<int:prediction_id>/campaigns")
@api_doc(summary="Create Campaign: a paused preset campaign for a score range of the prediction (page session)",
         tags=["pages"], security="page",
         description=CSRF_NOTE + " The preset's tiers (by category) whose category reaches into the range, "
         "with the range as the campaign's audience; created **paused**, so nothing is sent until it is "
         "activated. Answers as `POST /v1/campaigns`.",
         body=PageCampaignRequest, responses={201: CampaignOut}, errors=ERRORS)
@page_json
def create_campaign(prediction_id: int):
    data = load(PageCampaignRequest(), json_body())
    workspace = page_workspace()
    engine = store.engine()
    with engine.connect() as conn:
        prediction = definitions.get(conn, workspace.id, prediction_id)
        ensure_targetable(prediction)  # 403 demo/preview, 409 archived, before anything else is said
        bands = figures.category_rows(scoring.latest_run(conn, prediction.id), prediction)
    tiers = tiers_for_range(data["preset"], bands, data["min"], data["max"])
    definition = load(CampaignInput(), {
        "name": data.get("name") or default_name(prediction, data), "prediction_id": prediction.id,
        "audience": score_tree(prediction.id, data), "tiers": tiers, "status": "paused",
        "preset": data["preset"]})
    campaign, warnings = campaigns.create(engine, workspace.id, definition)
    return jsonify(CampaignOut().dump({**campaign, "warnings": warnings})), 201
