"""The prediction pages a marketer opens inside the host (HTML, rendered by Flask).

Signed in through a signed link or the API-key form (`plugin.api.page_auth`); every query is
scoped to the session's workspace, and another workspace's prediction is a 404 like a missing one.
"""
from __future__ import annotations

import math
from datetime import datetime, timezone

from flask import Blueprint, render_template, url_for

from plugin import store
from plugin.api import csrf
from plugin.api.docs import api_doc
from plugin.api.page_auth import page_login_required, page_workspace
from plugin.api.pages import figures
from plugin.errors import NotFound
from plugin.predictions import definitions, trainings

bp = Blueprint("pages", __name__)

HTML = {"content": {"text/html": {"schema": {"type": "string"}}}}
SIGN_IN = {"description": "Not signed in: redirect to `/login?next=…`"}


@bp.app_template_filter("thousands")
def thousands(value: float | int | None) -> str:
    return "—" if value is None else f"{round(value):,}"


@bp.app_template_filter("pct")
def pct(ratio: float | None) -> str:
    return "—" if ratio is None else f"{ratio * 100:.1f} %"


@bp.app_template_filter("score")
def score(value: float) -> str:
    """50, 62.5: a score bound without a needless ".0"."""
    return f"{value:g}"


@bp.app_template_filter("when")
def when(value: datetime | None) -> str:
    if value is None:
        return "never"
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).strftime("%-d %b %Y, %H:%M UTC")


def default_range(categories: list[dict]) -> tuple[int, int]:
    """Start the slider on the top category (High by default), the usual first target."""
    if len(categories) > 1:
        return min(99, math.floor(categories[-1]["min"])), 100
    return 50, 100


@bp.get("/predictions")
@api_doc(summary="The signed-in workspace's predictions (HTML page)", tags=["pages"], security="page",
         errors=(), responses={200: {"description": "The list page", **HTML}, 302: SIGN_IN})
@page_login_required
def prediction_list():
    workspace = page_workspace()
    with store.engine().connect() as conn:
        rows = [figures.listing_row(conn, p) for p in definitions.list_all(conn, workspace.id)
                if p.status != "archived"]
    return render_template("pages/predictions.html", workspace=workspace, rows=rows, csrf_token=csrf.token())


@bp.get("/predictions/<int:prediction_id>")
@api_doc(summary="A prediction's page: quality, score distribution, targeting slider (HTML page)",
         tags=["pages"], security="page", errors=(),
         responses={200: {"description": "The prediction page", **HTML}, 302: SIGN_IN,
                    404: {"description": "No such prediction in this workspace (HTML); a malformed id (JSON)",
                          "content": {**HTML["content"],
                                      "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}})
@page_login_required
def prediction_page(prediction_id: int):
    workspace = page_workspace()
    with store.engine().connect() as conn:
        try:
            prediction = definitions.get(conn, workspace.id, prediction_id)
        except NotFound:
            message = f"There is no prediction {prediction_id} in this workspace."
            return render_template("pages/not_found.html", workspace=workspace, message=message), 404
        model = figures.page(conn, prediction)
        training = trainings.latest(conn, prediction.id)
    low, high = default_range(model["categories"])
    config = {
        "predictionId": prediction.id, "targetable": model["targetable"], "name": prediction.name,
        "range": [low, high], "buckets": model["buckets"],
        "urls": {name: url_for(f"pages.{endpoint}", prediction_id=prediction.id) for name, endpoint in
                 (("preview", "preview_range"), ("segments", "create_segment"), ("campaigns", "create_campaign"))},
    }
    return render_template("pages/prediction.html", workspace=workspace, p=prediction, config=config,
                           default_range=(low, high), csrf_token=csrf.token(), training=training,
                           **model)
