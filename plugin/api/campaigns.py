"""/v1/campaigns: tiered campaigns, their runs, previews of their messages and their results."""
from __future__ import annotations

from flask import jsonify, request

from plugin import store
from plugin.api.requests import json_body, load
from plugin.api.v1 import blueprint, workspace
from plugin.campaigns import definitions, presets, preview, results, runs
from plugin.campaigns.responses import CampaignOut, PresetOut, RenderOut, ResultsOut, RunOut
from plugin.campaigns.schema import CampaignInput, CampaignPatch, PresetRequest, RenderRequest
from plugin.errors import ValidationFailed

bp = blueprint("campaigns", __name__, "/campaigns")


def _with_warnings(campaign: dict, warnings: list[str]) -> dict:
    return CampaignOut().dump({**campaign, "warnings": warnings})


@bp.get("/presets")
def list_presets():
    return jsonify({"presets": PresetOut(many=True).dump(presets.listing())})


@bp.post("")
def create():
    body = json_body()
    if isinstance(body, dict) and "preset" in body and "tiers" not in body:
        chosen = load(PresetRequest(), body)
        body = {k: v for k, v in body.items() if k not in ("connectors", "ads_audience_id", "control_share")}
        body["tiers"] = presets.apply(chosen["preset"], chosen["connectors"], chosen["ads_audience_id"],
                                      chosen.get("control_share"))
    data = load(CampaignInput(), body)
    campaign, warnings = definitions.create(store.engine(), workspace().id, data)
    return jsonify(_with_warnings(campaign, warnings)), 201


@bp.get("")
def list_campaigns():
    include = request.args.get("include_archived", "false").lower() in ("1", "true", "yes")
    with store.engine().connect() as conn:
        rows = definitions.list_rows(conn, workspace().id, include)
    return jsonify({"campaigns": CampaignOut(many=True).dump([definitions.as_dict(r) for r in rows])})


@bp.get("/<int:campaign_id>")
def show(campaign_id: int):
    with store.engine().connect() as conn:
        row = definitions.get_row(conn, workspace().id, campaign_id)
    return jsonify(CampaignOut().dump(definitions.as_dict(row)))


@bp.patch("/<int:campaign_id>")
def change(campaign_id: int):
    patch = load(CampaignPatch(), json_body())
    if not patch:
        raise ValidationFailed("nothing to change", details={"_schema": ["Give at least one field."]})
    campaign, warnings = definitions.update_campaign(store.engine(), workspace().id, campaign_id, patch)
    return jsonify(_with_warnings(campaign, warnings))


@bp.delete("/<int:campaign_id>")
def archive(campaign_id: int):
    return jsonify(CampaignOut().dump(definitions.archive(store.engine(), workspace().id, campaign_id)))


@bp.post("/<int:campaign_id>/runs")
def run(campaign_id: int):
    key = request.headers.get("Idempotency-Key")
    if key is not None and not 1 <= len(key) <= 200:
        raise ValidationFailed("Idempotency-Key must be 1 to 200 characters", code="invalid_idempotency_key")
    made, created = runs.start_run(store.engine(), workspace().id, campaign_id, idempotency_key=key)
    return jsonify(RunOut().dump({**made, "created": created})), 201 if created else 200


@bp.get("/<int:campaign_id>/runs")
def list_runs(campaign_id: int):
    with store.engine().connect() as conn:
        return jsonify({"runs": RunOut(many=True).dump(runs.list_runs(conn, workspace().id, campaign_id))})


@bp.post("/<int:campaign_id>/render")
def render(campaign_id: int):
    data = load(RenderRequest(), json_body())
    with store.engine().connect() as conn:
        return jsonify(RenderOut().dump(preview.render_for_user(conn, workspace().id, campaign_id,
                                                                data["user_id"], data.get("tier"))))


@bp.get("/<int:campaign_id>/results")
def campaign_results(campaign_id: int):
    with store.engine().connect() as conn:
        return jsonify(ResultsOut().dump(results.campaign_results(conn, workspace().id, campaign_id)))
