"""Signing in to the prediction pages, which the host shows in an iframe.

The host links to `GET /login?workspace=W&expires=E&signature=S[&next=/path]` where S is the
lowercase hex HMAC-SHA256, keyed with the workspace's webhook secret (the base64 part after
`whsec_`, as Standard Webhooks does), of `likely-page-link.v1.W.E` (E: Unix seconds, at most
an hour ahead). The workspace's own secret — not the partner secret — so a leaked link key
opens one workspace only. Without a link, a person signs in with the workspace's API key
(the embedded default). Either way a session cookie scoped to that one workspace is set:
`SameSite=None; Secure` so it is sent inside the host's iframe, HttpOnly.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import time
from datetime import timedelta
from functools import wraps
from typing import Any, Callable
from urllib.parse import urlencode, urlsplit

from flask import Blueprint, Response, current_app, g, make_response, redirect, render_template, request, session
from marshmallow import Schema, ValidationError, fields, validate, validates_schema
from sqlalchemy import select

from plugin import store, workspaces
from plugin.api import csrf
from plugin.api.docs import api_doc
from plugin.api.requests import load
from plugin.api.security import webhook_secrets_for, workspace_for_key
from plugin.errors import Forbidden, NotFound, Unauthorized
from plugin.store.tables import api_keys, webhook_secrets
from plugin.workspaces import Workspace

bp = Blueprint("page_auth", __name__)

LINK_MAX_SECONDS = 3600
SESSION_KEY = "likely_page"
COOKIE_NAME = "likely_session"
HTML = {"content": {"text/html": {"schema": {"type": "string"}}}}


@bp.record_once
def configure(state) -> None:
    hours = state.app.config["LIKELY"]["page_session_hours"]
    state.app.config.update(SESSION_COOKIE_NAME=COOKIE_NAME, SESSION_COOKIE_SAMESITE="None",
                            SESSION_COOKIE_SECURE=True, SESSION_COOKIE_HTTPONLY=True,
                            PERMANENT_SESSION_LIFETIME=timedelta(hours=hours))


def link_signature(secret: str, workspace: str, expires: int) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    message = f"likely-page-link.v1.{workspace}.{expires}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def signed_link(secret: str, workspace: str, expires: int, next_path: str | None = None) -> str:
    """The path and query a host links to (what a host implementation computes)."""
    query = {"workspace": workspace, "expires": expires, "signature": link_signature(secret, workspace, expires)}
    if next_path:
        query["next"] = next_path
    return "/login?" + urlencode(query)


class LinkSchema(Schema):
    workspace = fields.String(validate=validate.Regexp(workspaces.SLUG))
    expires = fields.Integer(validate=validate.Range(min=0, max=2**40),
                             metadata={"description": "Unix seconds; at most an hour ahead."})
    signature = fields.String(validate=validate.Regexp(r"^[0-9a-f]{64}$"),
                              metadata={"description": "hex HMAC-SHA256 (see README)."})
    next = fields.String(validate=validate.Length(max=2048),
                         metadata={"description": "Path to open after signing in (same origin)."})

    @validates_schema
    def complete(self, data: dict, **kwargs) -> None:
        given = {"workspace", "expires", "signature"} & set(data)
        if given and len(given) < 3:
            raise ValidationError("A signed link has workspace, expires and signature.", "signature")


class ApiKeyLoginSchema(Schema):
    api_key = fields.String(required=True, validate=validate.Length(1, 512))
    next = fields.String(validate=validate.Length(max=2048))
    csrf_token = fields.String(metadata={"description": "The sign-in form's token (login CSRF); "
                                                        "without the form's own token the answer is 403."})


def frame_headers(response: Response) -> Response:
    """Let only the host (LIKELY_HOST_ORIGIN) frame a page; without one, only likely itself."""
    origins = current_app.config["LIKELY"].get("host_origins") or []
    # Scripts only from likely itself (no inline script, no plugin objects, no <base> rewrite),
    # forms post only to likely.
    response.headers["Content-Security-Policy"] = (
        "frame-ancestors " + (" ".join(origins) or "'self'")
        + "; script-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'")
    if not origins:
        response.headers["X-Frame-Options"] = "SAMEORIGIN"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"  # a page URL never leaves in a Referer
    response.headers["Cache-Control"] = "private, no-store"
    return response


def _safe_next(value: str | None) -> str | None:
    # Same-origin paths only: a link must never bounce a signed-in user to another site.
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return None
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        return None  # a CR/LF would split the Location header (a 500 before, a header injection at worst)
    parts = urlsplit(value)
    return value if not parts.scheme and not parts.netloc else None


def credentials_fingerprint(workspace: Workspace) -> str:
    """A digest of the workspace's current API keys and webhook secrets (hashes and row ids,
    never the secrets). A session remembers it: rotating credentials ends every session."""
    with store.engine().connect() as conn:
        keys = conn.execute(select(api_keys.c.key_hash).where(api_keys.c.workspace_id == workspace.id)
                            .order_by(api_keys.c.key_hash)).scalars().all()
        secrets = conn.execute(select(webhook_secrets.c.id).where(webhook_secrets.c.workspace_id == workspace.id)
                               .order_by(webhook_secrets.c.id)).scalars().all()
    parts = [*keys, *map(str, secrets)]
    if workspace.slug == workspaces.DEFAULT:  # the environment's credentials are the default's too
        configured = current_app.config["LIKELY"]
        parts += [hashlib.sha256(v.encode()).hexdigest()
                  for v in (*configured.get("api_keys", []), *configured.get("webhook_secrets", []))]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _start_session(workspace: Workspace, next_path: str | None) -> Response:
    session.clear()
    session.permanent = True
    session[SESSION_KEY] = {"id": workspace.id, "slug": workspace.slug,
                            "credentials": credentials_fingerprint(workspace)}
    target = _safe_next(next_path)
    if target:
        return frame_headers(redirect(target, code=302))
    return frame_headers(make_response(_page(f"Signed in to {workspace.slug}.", None, signed_in=True), 200))


def _page(message: str, form_next: str | None, signed_in: bool = False) -> str:
    """The sign-in page, with the pages' own <head>; the form carries a login CSRF token."""
    return render_template("pages/login.html", message=message, form_next=form_next, signed_in=signed_in,
                           login_token=csrf.token() if form_next is not None else None)


@bp.get("/login")
@api_doc(summary="Sign in to the prediction pages (signed link), or show the API-key form",
         tags=["pages"], security="none", query=LinkSchema, errors=(400, 401, 403),
         responses={200: {"description": "The sign-in form, or a signed-in notice", **HTML},
                    302: {"description": "Signed in; redirect to `next`"}})
def login_link():
    data = load(LinkSchema(), request.args.to_dict())
    if "signature" not in data:
        return frame_headers(make_response(_page("Sign in with your workspace's API key.", data.get("next", ""))))
    now = int(time.time())
    if data["expires"] < now:
        raise Unauthorized("this sign-in link has expired; open the page from the host again", code="link_expired")
    if data["expires"] > now + LINK_MAX_SECONDS:
        raise Unauthorized(f"a sign-in link may be valid for at most {LINK_MAX_SECONDS} seconds",
                           code="invalid_link")
    with store.engine().connect() as conn:
        try:
            workspace = workspaces.get(conn, data["workspace"])
        except NotFound:
            workspace = None
        secrets = webhook_secrets_for(conn, workspace) if workspace else []
    if not any(hmac.compare_digest(link_signature(s, data["workspace"], data["expires"]), data["signature"])
               for s in secrets):
        raise Unauthorized("the sign-in link's signature is not valid", code="invalid_signature")
    if not workspace.active:
        raise Forbidden("this workspace is uninstalled", code="workspace_uninstalled")
    return _start_session(workspace, data.get("next"))


@bp.post("/login")
@api_doc(summary="Sign in to the prediction pages with an API key", tags=["pages"], security="none",
         body=ApiKeyLoginSchema, body_content_type="application/x-www-form-urlencoded", errors=(),
         responses={200: {"description": "Signed in", **HTML}, 302: {"description": "Signed in; redirect to `next`"},
                    400: {"description": "No key given", **HTML}, 401: {"description": "Wrong key", **HTML},
                    403: {"description": "Not posted from likely's own sign-in form (login CSRF)", **HTML}})
def login_api_key():
    key = request.form.get("api_key", "").strip()
    next_path = request.form.get("next", "")
    if not csrf.matches(request.form.get("csrf_token", "")):
        # Login CSRF: another site's form could sign this browser in to the attacker's workspace.
        return frame_headers(make_response(_page(
            "This sign-in form has expired or did not come from likely; sign in again.", ""), 403))
    if not key or len(key) > 512:
        return frame_headers(make_response(_page("Enter an API key.", next_path), 400))
    workspace = workspace_for_key(key)
    if workspace is None:
        return frame_headers(make_response(_page("That API key is not valid.", next_path), 401))
    return _start_session(workspace, next_path)


def session_workspace() -> Workspace | None:
    """The active workspace this browser signed in to, or None."""
    held = session.get(SESSION_KEY)
    if not isinstance(held, dict) or not isinstance(held.get("slug"), str):
        return None
    with store.engine().connect() as conn:
        try:
            workspace = workspaces.get(conn, held["slug"])
        except NotFound:
            return None
    # The id must match too: a workspace purged and re-created under the same slug is another one;
    # and the credentials: rotating them ends the sessions opened with the old ones.
    if workspace.id != held.get("id") or not workspace.active:
        return None
    return workspace if held.get("credentials") == credentials_fingerprint(workspace) else None


def page_login_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """For page views: require a session, expose its workspace as `g.workspace`, set frame headers.

    A URL naming another workspace (`<workspace>` in the rule) answers 404, as if it did not exist.
    """
    @wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Response:
        workspace = session_workspace()
        if workspace is None:
            return frame_headers(redirect("/login?" + urlencode({"next": request.full_path.rstrip("?")})))
        if "workspace" in kwargs and kwargs["workspace"] != workspace.slug:
            raise NotFound("no such page", code="not_found")
        g.workspace = workspace
        return frame_headers(make_response(view(*args, **kwargs)))
    return guarded


def page_workspace() -> Workspace:
    """The signed-in workspace of a `page_login_required` view; scope every query to it."""
    return g.workspace
