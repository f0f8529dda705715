"""/v1/campaigns: tiered campaigns, their runs, previews of their messages and their results."""
from __future__ import annotations

from flask import jsonify, request
from marshmallow import EXCLUDE, Schema, fields

from plugin import store
from plugin.api.docs import api_doc
from plugin.api.requests import json_body, load
from plugin.api.v1 import blueprint, workspace
from plugin.campaigns import definitions, presets, preview, results, runs
from plugin.campaigns.responses import CampaignOut, PresetOut, RenderOut, ResultsOut, RunOut
from plugin.campaigns.schema import CampaignInput, CampaignPatch, PresetRequest, RenderRequest
from plugin.errors import ValidationFailed

bp = blueprint("campaigns", __name__, "/campaigns")


class CampaignListQuery(Schema):
    class Meta:
        unknown = EXCLUDE

    include_archived = fields.Boolean(load_default=False)


class CampaignListOut(Schema):
    campaigns = fields.List(fields.Nested(CampaignOut), required=True)


class RunListOut(Schema):
    runs = fields.List(fields.Nested(RunOut), required=True)


class PresetListOut(Schema):
    presets = fields.List(fields.Nested(PresetOut), required=True)


def _with_warnings(campaign: dict, warnings: list[str]) -> dict:
    return CampaignOut().dump({**campaign, "warnings": warnings})


@bp.get("/presets")
@api_doc(summary="The likelihood playbook presets", tags=["campaigns"], responses={200: PresetListOut})
def list_presets():
    return jsonify({"presets": PresetOut(many=True).dump(presets.listing())})


@bp.post("")
@api_doc(summary="Create a tiered campaign (paused unless `status` is `active`)", tags=["campaigns"],
         body=(CampaignInput, PresetRequest), responses={201: CampaignOut},
         description="A full definition (tiers), or `preset` with its connectors. Without `status` a "
                     "campaign is `paused`: nothing is sent until POST /v1/campaigns/{id}/activate.")
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
@api_doc(summary="List the workspace's campaigns", tags=["campaigns"], query=CampaignListQuery,
         responses={200: CampaignListOut})
def list_campaigns():
    include = load(CampaignListQuery(), request.args.to_dict())["include_archived"]
    with store.engine().connect() as conn:
        rows = definitions.list_rows(conn, workspace().id, include)
    return jsonify({"campaigns": CampaignOut(many=True).dump([definitions.as_dict(r) for r in rows])})


@bp.get("/<int:campaign_id>")
@api_doc(summary="A campaign", tags=["campaigns"], responses={200: CampaignOut})
def show(campaign_id: int):
    with store.engine().connect() as conn:
        row = definitions.get_row(conn, workspace().id, campaign_id)
    return jsonify(CampaignOut().dump(definitions.as_dict(row)))


@bp.patch("/<int:campaign_id>")
@api_doc(summary="Change a campaign", tags=["campaigns"], body=CampaignPatch, responses={200: CampaignOut})
def change(campaign_id: int):
    patch = load(CampaignPatch(), json_body())
    if not patch:
        raise ValidationFailed("nothing to change", details={"_schema": ["Give at least one field."]})
    campaign, warnings = definitions.update_campaign(store.engine(), workspace().id, campaign_id, patch)
    return jsonify(_with_warnings(campaign, warnings))


@bp.delete("/<int:campaign_id>")
@api_doc(summary="Archive a campaign; its unsent messages are cancelled", tags=["campaigns"],
         responses={200: CampaignOut})
def archive(campaign_id: int):
    return jsonify(CampaignOut().dump(definitions.archive(store.engine(), workspace().id, campaign_id)))


@bp.post("/<int:campaign_id>/activate")
@api_doc(summary="Activate a campaign: it sends on its schedule from now on", tags=["campaigns"],
         responses={200: CampaignOut})
def activate(campaign_id: int):
    campaign, warnings = definitions.set_status(store.engine(), workspace().id, campaign_id, "active")
    return jsonify(_with_warnings(campaign, warnings))


@bp.post("/<int:campaign_id>/pause")
@api_doc(summary="Pause a campaign", tags=["campaigns"], responses={200: CampaignOut})
def pause(campaign_id: int):
    campaign, warnings = definitions.set_status(store.engine(), workspace().id, campaign_id, "paused")
    return jsonify(_with_warnings(campaign, warnings))


@bp.post("/<int:campaign_id>/unarchive")
@api_doc(summary="Restore an archived campaign, paused", tags=["campaigns"], responses={200: CampaignOut})
def unarchive(campaign_id: int):
    return jsonify(CampaignOut().dump(definitions.unarchive(store.engine(), workspace().id, campaign_id)))


@bp.post("/<int:campaign_id>/runs")
@api_doc(summary="Run a campaign now (once per Idempotency-Key)", tags=["campaigns"],
         headers={"Idempotency-Key": {"type": "string", "minLength": 1, "maxLength": 200}},
         responses={201: RunOut, 200: RunOut}, description="201 for a new run, 200 when the key's run existed.")
def run(campaign_id: int):
    key = request.headers.get("Idempotency-Key")
    if key is not None and not 1 <= len(key) <= 200:
        raise ValidationFailed("Idempotency-Key must be 1 to 200 characters", code="invalid_idempotency_key")
    made, created = runs.start_run(store.engine(), workspace().id, campaign_id, idempotency_key=key)
    return jsonify(RunOut().dump({**made, "created": created})), 201 if created else 200


@bp.get("/<int:campaign_id>/runs")
@api_doc(summary="A campaign's runs", tags=["campaigns"], responses={200: RunListOut})
def list_runs(campaign_id: int):
    with store.engine().connect() as conn:
        return jsonify({"runs": RunOut(many=True).dump(runs.list_runs(conn, workspace().id, campaign_id))})


@bp.post("/<int:campaign_id>/render")
@api_doc(summary="Render a campaign's messages for one user", tags=["campaigns"], body=RenderRequest,
         responses={200: RenderOut})
def render(campaign_id: int):
    data = load(RenderRequest(), json_body())
    with store.engine().connect() as conn:
        return jsonify(RenderOut().dump(preview.render_for_user(conn, workspace().id, campaign_id,
                                                                data["user_id"], data.get("tier"))))


@bp.get("/<int:campaign_id>/results")
@api_doc(summary="Per tier delivery and conversions vs control, with the uplift", tags=["campaigns"],
         responses={200: ResultsOut})
def campaign_results(campaign_id: int):
    with store.engine().connect() as conn:
        return jsonify(ResultsOut().dump(results.campaign_results(conn, workspace().id, campaign_id)))
