"""Shared pieces of the /v1 API: every blueprint authenticates by API key first."""
from __future__ import annotations

from flask import Blueprint, g

from plugin.api.security import authenticate_api_key
from plugin.workspaces import Workspace


def blueprint(name: str, import_name: str, prefix: str) -> Blueprint:
    """A /v1 blueprint whose every request resolves `g.workspace` from the bearer key (or 401)."""
    bp = Blueprint(name, import_name, url_prefix=f"/v1{prefix}")
    @bp.before_request
    def authenticate() -> None:
        authenticate_api_key()
    return bp


def workspace() -> Workspace:
    """The caller's workspace; every query of a /v1 view is scoped to it."""
    return g.workspace
