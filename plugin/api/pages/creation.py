"""The creation form of a prediction: its page, its live data check, and the create call.

The form offers the goal events the store has (with their recent counts); as the marketer
types, the page asks `POST /pages/predictions/check` for the data check (the same figures as
`POST /v1/predictions/check`) and shows a thin window as a warning; `POST /pages/predictions`
creates it through the same function as `POST /v1/predictions` (the first training is queued)
and the page opens the new prediction, which says "Building the first model".
"""
from __future__ import annotations

import time

from flask import current_app, jsonify, render_template

from plugin import store
from plugin.api import csrf
from plugin.api.docs import api_doc
from plugin.api.page_auth import page_login_required, page_workspace
from plugin.api.pages.actions import CSRF_NOTE, ERRORS, page_json
from plugin.api.pages.views import HTML, SIGN_IN, bp
from plugin.api.predictions import view
from plugin.api.requests import json_body, load
from plugin.predictions import datacheck
from plugin.predictions.definitions import SCHEDULES
from plugin.predictions.responses import CreatedPredictionOut, DataCheckOut
from plugin.predictions.schemas import PredictionSchema


@bp.get("/predictions/new")
@api_doc(summary="The form that creates a prediction (HTML page)", tags=["pages"], security="page", errors=(),
         responses={200: {"description": "The creation form", **HTML}, 302: SIGN_IN})
@page_login_required
def new_prediction():
    workspace = page_workspace()
    with store.engine().connect() as conn:
        goal_events = datacheck.recent_event_counts(conn, workspace.id, int(time.time()))
    return render_template("pages/new_prediction.html", workspace=workspace, goal_events=goal_events,
                           schedules=SCHEDULES, recent_days=datacheck.RECENT_DAYS, csrf_token=csrf.token())


@bp.post("/pages/predictions/check")
@api_doc(summary="The creation form's data check (page session)", tags=["pages"], security="page",
         description=CSRF_NOTE + " Answers as `POST /v1/predictions/check`.", body=PredictionSchema,
         responses={200: DataCheckOut}, errors=ERRORS)
@page_json
def check_prediction():
    data = load(PredictionSchema(), json_body())
    settings = current_app.config["LIKELY"]
    with store.engine().connect() as conn:
        checked = datacheck.check(conn, page_workspace().id, data, int(time.time()),
                                  settings["min_positives"], settings["min_negatives"])
    return jsonify(checked.as_dict())


@bp.post("/pages/predictions")
@api_doc(summary="Create a prediction from the form (page session)", tags=["pages"], security="page",
         description=CSRF_NOTE + " Answers as `POST /v1/predictions`: its first training is queued.",
         body=PredictionSchema, responses={201: CreatedPredictionOut}, errors=ERRORS)
@page_json
def create_prediction():
    data = load(PredictionSchema(), json_body())
    with store.transaction(store.engine()) as conn:
        prediction, checked = datacheck.create_checked(conn, page_workspace().id, data,
                                                       current_app.config["LIKELY"], int(time.time()))
        body = {**view(conn, prediction), "data_check": checked.as_dict()}
    return jsonify(body), 201
