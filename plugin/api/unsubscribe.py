"""One-click unsubscribe (RFC 8058) and its confirmation page.

`GET /unsubscribe/<token>` shows a confirmation page: mail scanners follow links, so a GET
never unsubscribes. `POST /unsubscribe/<token>` with the body `List-Unsubscribe=One-Click` —
what a mail client sends for `List-Unsubscribe-Post: List-Unsubscribe=One-Click`, and what the
page's button sends — records the opt-out for the link's channel. The signed token is the only
credential (no cookie, no CSRF token: a mail client has neither); an unknown or erased user is
answered like any other, so a link reveals nothing.
"""
from __future__ import annotations

import time

from flask import Blueprint, render_template, request
from sqlalchemy import select

from plugin import store, workspaces
from plugin.api.docs import api_doc
from plugin.engagement import outcomes, unsubscribes
from plugin.errors import LikelyError
from plugin.store.tables import users

bp = Blueprint("unsubscribe", __name__)
HTML = {"content": {"text/html": {"schema": {"type": "string"}}}}
TOKEN = {"token": {"type": "string", "pattern": "^[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+$", "maxLength": 2048,
                   "description": "The signed token of an unsubscribe link."}}
# A token that is no link of ours is answered with the page; a path that is no route with JSON.
NOT_FOUND = {"description": "Not a link likely signed", "content": {
    "text/html": {"schema": {"type": "string"}},
    "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
CHANNEL_WORDS = {"email": "marketing emails", "push": "push notifications", "in_app": "in-app messages",
                 "sms": "text messages", "webhook": "these messages", "ads": "personalised ads"}
ONE_CLICK = "One-Click"


def _page(state: str, channel: str | None = None, status: int = 200):
    titles = {"confirm": "Unsubscribe", "done": "You are unsubscribed", "invalid": "Link not valid"}
    html = render_template("unsubscribe/page.html", state=state, title=titles[state],
                           channel_words=CHANNEL_WORDS.get(channel or "", "these messages"))
    return html, status, {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store",
                          "Referrer-Policy": "no-referrer"}


@bp.get("/unsubscribe/<token>")
@api_doc(summary="Unsubscribe confirmation page", tags=["unsubscribe"], security="none", errors=(),
         path=TOKEN, responses={200: {"description": "Asks to confirm", **HTML}, 404: NOT_FOUND})
def confirm(token: str):
    try:
        _, _, channel, _ = unsubscribes.read_token(token)
    except unsubscribes.BadToken:
        return _page("invalid", status=404)
    return _page("confirm", channel)


@bp.post("/unsubscribe/<token>")
@api_doc(summary="One-click unsubscribe (RFC 8058)", tags=["unsubscribe"], security="none", errors=(),
         body={"type": "object", "properties": {"List-Unsubscribe": {"type": "string", "enum": [ONE_CLICK]}},
               "required": ["List-Unsubscribe"]},
         body_content_type="application/x-www-form-urlencoded", path=TOKEN,
         responses={200: {"description": "Unsubscribed", **HTML},
                    400: {"description": "The body is not List-Unsubscribe=One-Click", **HTML},
                    404: NOT_FOUND})
def one_click(token: str):
    try:
        slug, external_id, channel, key = unsubscribes.read_token(token)
    except unsubscribes.BadToken:
        return _page("invalid", status=404)
    if request.form.get("List-Unsubscribe") != ONE_CLICK:
        return _page("confirm", channel, status=400)
    engine = store.engine()
    with store.transaction(engine) as conn:
        try:
            workspace = workspaces.get(conn, slug)
        except LikelyError:
            return _page("done", channel)  # the workspace is gone, and its data with it
        user_id = conn.execute(select(users.c.id).where(
            users.c.workspace_id == workspace.id, users.c.external_id == external_id)).scalar()
        if user_id is not None:
            unsubscribes.opt_out(conn, workspace.id, user_id, channel, "one_click")
            if key:  # credit the opt-out to the message it came from (results count it)
                outcomes.record(conn, workspace.id, [outcomes.Engagement(
                    "unsubscribed", int(time.time()), key=key, user_id=user_id, channel=channel)])
    return _page("done", channel)
