"""Prediction pages: signed expiring links, the API-key form, one workspace per session, framing."""
from __future__ import annotations

import re
import time

import pytest
from flask import Blueprint, jsonify

from plugin import create_app
from plugin.api.page_auth import link_signature, page_login_required, page_workspace, signed_link
from tests.helpers import API_KEY, PARTNER_SECRET, WEBHOOK_SECRET
from tests.plugin.hosting import HOST_ORIGIN, install, uninstall

BASE = "https://likely.example"


def _with_pages(app):
    """A page blueprint as the pages to come will be: one resource per workspace."""
    bp = Blueprint("probe_pages", __name__)

    @bp.get("/pages/whoami")
    @page_login_required
    def whoami():
        return jsonify({"workspace": page_workspace().slug})

    @bp.get("/pages/<workspace>/overview")
    @page_login_required
    def overview(workspace):
        return jsonify({"workspace": page_workspace().slug})
    app.register_blueprint(bp)
    return app


@pytest.fixture
def pages(hosted_app):
    return _with_pages(hosted_app).test_client()


@pytest.fixture
def installed(pages):
    """Two installed workspaces and their webhook secrets."""
    return {slug: install(pages, slug=slug, settings={}).json["credentials"] for slug in ("acme", "globex")}


def _open(client, secret, workspace, expires=None, next_path=None):
    expires = int(time.time()) + 300 if expires is None else expires
    return client.get(signed_link(secret, workspace, expires, next_path), base_url=BASE)


def test_a_signed_link_signs_in_to_its_workspace_only(pages, installed):
    response = _open(pages, installed["acme"]["webhook_secret"], "acme", next_path="/pages/whoami")
    assert response.status_code == 302 and response.headers["Location"] == "/pages/whoami"
    cookie = response.headers["Set-Cookie"]
    assert "likely_session=" in cookie and "Secure" in cookie and "HttpOnly" in cookie and "SameSite=None" in cookie
    assert pages.get("/pages/whoami", base_url=BASE).json == {"workspace": "acme"}
    assert pages.get("/pages/acme/overview", base_url=BASE).json == {"workspace": "acme"}
    # Workspace A's session never reads B's pages.
    other = pages.get("/pages/globex/overview", base_url=BASE)
    assert other.status_code == 404
    assert "globex" not in other.get_data(as_text=True).replace("/pages/globex", "")


def test_a_new_link_replaces_the_session(pages, installed):
    _open(pages, installed["acme"]["webhook_secret"], "acme")
    _open(pages, installed["globex"]["webhook_secret"], "globex")
    assert pages.get("/pages/whoami", base_url=BASE).json == {"workspace": "globex"}
    assert pages.get("/pages/acme/overview", base_url=BASE).status_code == 404


@pytest.mark.parametrize("forgery", ["expired", "too_long", "other_secret", "partner_secret", "other_workspace",
                                     "tampered_expiry", "unknown_workspace"])
def test_expired_and_forged_links_are_refused(pages, installed, forgery):
    now = int(time.time())
    acme, globex = installed["acme"]["webhook_secret"], installed["globex"]["webhook_secret"]
    if forgery == "expired":
        response = _open(pages, acme, "acme", expires=now - 1)
    elif forgery == "too_long":
        response = _open(pages, acme, "acme", expires=now + 7200)
    elif forgery == "other_secret":
        response = _open(pages, globex, "acme")
    elif forgery == "partner_secret":
        response = _open(pages, PARTNER_SECRET, "acme")
    elif forgery == "other_workspace":
        signature = link_signature(acme, "acme", now + 300)
        response = pages.get(f"/login?workspace=globex&expires={now + 300}&signature={signature}", base_url=BASE)
    elif forgery == "tampered_expiry":
        signature = link_signature(acme, "acme", now + 300)
        response = pages.get(f"/login?workspace=acme&expires={now + 600}&signature={signature}", base_url=BASE)
    else:
        response = _open(pages, acme, "nobody")
    assert response.status_code == 401, response.json
    assert "Set-Cookie" not in response.headers
    assert pages.get("/pages/whoami", base_url=BASE).status_code == 302


@pytest.mark.parametrize("query", ["workspace=acme", "workspace=acme&expires=abc&signature=00",
                                   "workspace=ACME!&expires=1&signature=" + "0" * 64])
def test_malformed_links_are_400(pages, query):
    response = pages.get(f"/login?{query}", base_url=BASE)
    assert response.status_code == 400 and response.json["error"]["code"] == "validation_failed"


def test_without_a_session_pages_send_to_the_login_form(pages):
    response = pages.get("/pages/whoami?x=1", base_url=BASE)
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=%2Fpages%2Fwhoami%3Fx%3D1"
    form = pages.get(response.headers["Location"], base_url=BASE)
    assert form.status_code == 200 and 'name="api_key"' in form.get_data(as_text=True)
    assert 'value="/pages/whoami?x=1"' in form.get_data(as_text=True)


def form_token(pages) -> str:
    """The sign-in form's login CSRF token (the form is what a person fills in)."""
    page = pages.get("/login", base_url=BASE).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def test_api_key_login_form(pages, installed):
    token = form_token(pages)
    wrong = pages.post("/login", data={"api_key": "nope-nope-nope-nope", "next": "/pages/whoami",
                                       "csrf_token": token}, base_url=BASE)
    assert wrong.status_code == 401 and "not valid" in wrong.get_data(as_text=True)
    assert "Set-Cookie" not in wrong.headers
    empty = pages.post("/login", data={"csrf_token": token}, base_url=BASE)
    assert empty.status_code == 400
    right = pages.post("/login", data={"api_key": installed["globex"]["api_key"], "next": "/pages/whoami",
                                       "csrf_token": token}, base_url=BASE)
    assert right.status_code == 302 and right.headers["Location"] == "/pages/whoami"
    assert pages.get("/pages/whoami", base_url=BASE).json == {"workspace": "globex"}


def test_the_environment_key_signs_in_to_the_default_workspace(pages):
    response = pages.post("/login", data={"api_key": API_KEY, "csrf_token": form_token(pages)}, base_url=BASE)
    assert response.status_code == 200 and "default" in response.get_data(as_text=True)
    assert 'href="/predictions"' in response.get_data(as_text=True)  # somewhere to go from here
    assert pages.get("/pages/whoami", base_url=BASE).json == {"workspace": "default"}
    # The default workspace's links are keyed by LIKELY_WEBHOOK_SECRETS.
    assert _open(pages.application.test_client(), WEBHOOK_SECRET, "default").status_code == 200


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:alert(1)"])
def test_next_never_leaves_the_site(pages, installed, target):
    response = _open(pages, installed["acme"]["webhook_secret"], "acme", next_path=target)
    assert response.status_code == 200  # signed in, shown the notice, not redirected


def test_uninstalling_ends_the_sessions(pages, installed):
    _open(pages, installed["acme"]["webhook_secret"], "acme")
    assert pages.get("/pages/whoami", base_url=BASE).status_code == 200
    uninstall(pages, "acme")
    assert pages.get("/pages/whoami", base_url=BASE).status_code == 302
    refused = _open(pages, installed["acme"]["webhook_secret"], "acme")
    assert refused.status_code == 403 and refused.json["error"]["code"] == "workspace_uninstalled"


def test_pages_may_be_framed_by_the_host_origin_only(pages, installed):
    _open(pages, installed["acme"]["webhook_secret"], "acme")
    for response in (pages.get("/pages/whoami", base_url=BASE), pages.get("/login", base_url=BASE)):
        assert response.headers["Content-Security-Policy"].startswith(f"frame-ancestors {HOST_ORIGIN};")
        assert "X-Frame-Options" not in response.headers
        assert response.headers["Cache-Control"] == "private, no-store"


def test_without_a_host_origin_only_likely_frames_its_pages(app_settings):
    app = _with_pages(create_app(app_settings))
    response = app.test_client().get("/login", base_url=BASE)
    assert response.headers["Content-Security-Policy"].startswith("frame-ancestors 'self';")
    assert response.headers["X-Frame-Options"] == "SAMEORIGIN"
    app.extensions["likely_engine"].dispose()


def test_a_forged_cookie_is_ignored(pages, installed):
    pages.set_cookie("likely_session", "eyJsaWtlbHlfcGFnZSI6eyJpZCI6MSwic2x1ZyI6ImFjbWUifX0.forged.sig",
                     domain="likely.example")
    assert pages.get("/pages/whoami", base_url=BASE).status_code == 302
