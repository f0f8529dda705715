"""The campaigns page: every campaign with its status, and the explicit steps that change it —
Activate, Pause, Archive, Unarchive — through the same functions as the /v1 API.

A campaign made with Create Campaign is paused; nothing is sent until someone activates it here
(or with `POST /v1/campaigns/{id}/activate`, or `likely campaigns activate`).
"""
from __future__ import annotations

from flask import jsonify, render_template

from plugin import store
from plugin.api import csrf
from plugin.api.docs import api_doc
from plugin.api.page_auth import page_login_required, page_workspace
from plugin.api.pages.actions import CSRF_NOTE, ERRORS, page_json
from plugin.api.pages.views import HTML, SIGN_IN, bp
from plugin.campaigns import definitions as campaigns
from plugin.campaigns.responses import CampaignOut

ACTIONS = ("activate", "pause", "archive", "unarchive")


@bp.get("/campaigns")
@api_doc(summary="The workspace's campaigns, with Activate / Pause / Archive / Unarchive (HTML page)",
         tags=["pages"], security="page", errors=(),
         responses={200: {"description": "The campaigns page", **HTML}, 302: SIGN_IN})
@page_login_required
def campaign_list():
    workspace = page_workspace()
    with store.engine().connect() as conn:
        rows = [campaigns.as_dict(r) for r in campaigns.list_rows(conn, workspace.id, include_archived=True)]
    return render_template("pages/campaigns.html", workspace=workspace, rows=rows, csrf_token=csrf.token())


def change_campaign(campaign_id: int, action: str):
    """One explicit step; the same functions as the /v1 calls, so the same checks and answers."""
    engine, workspace_id = store.engine(), page_workspace().id
    warnings: list[str] = []
    if action == "archive":
        campaign = campaigns.archive(engine, workspace_id, campaign_id)
    elif action == "unarchive":
        campaign = campaigns.unarchive(engine, workspace_id, campaign_id)
    else:
        campaign, warnings = campaigns.set_status(engine, workspace_id, campaign_id,
                                                  "active" if action == "activate" else "paused")
    return jsonify(CampaignOut().dump({**campaign, "warnings": warnings}))


def _step(action: str):
    def step(campaign_id: int):
        return change_campaign(campaign_id, action)
    step.__name__ = f"{action}_campaign"
    documented = api_doc(summary=f"{action.capitalize()} a campaign (page session)", tags=["pages"], security="page",
                         description=CSRF_NOTE + " Answers as the /v1 campaign calls: the campaign, with `warnings`.",
                         responses={200: CampaignOut}, errors=ERRORS)
    bp.add_url_rule(f"/pages/campaigns/<int:campaign_id>/{action}", endpoint=step.__name__,
                    view_func=page_json(documented(step)), methods=["POST"])


for _action in ACTIONS:
    _step(_action)
