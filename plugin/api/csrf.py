"""CSRF protection for the pages' JSON endpoints.

The page session cookie is `SameSite=None` (it must reach likely inside the host's iframe), so
the browser sends it with any site's request. Every state-changing or figure-fetching call
from a page therefore carries a per-session token in the `X-CSRF-Token` header: the page
embeds it, another site cannot read it, and a cross-site request cannot set the header
without a CORS preflight that likely never grants.
"""
from __future__ import annotations

import hmac
import secrets

from flask import request, session

from plugin.errors import Forbidden

SESSION_KEY = "likely_csrf"
HEADER = "X-CSRF-Token"


def token() -> str:
    """This session's token, created on first use (a new sign-in clears the session, so a new token)."""
    value = session.get(SESSION_KEY)
    if not isinstance(value, str):
        value = session[SESSION_KEY] = secrets.token_urlsafe(32)
    return value


def matches(given: str) -> bool:
    """True when `given` is this session's token (a form field's, e.g. the sign-in form)."""
    expected = session.get(SESSION_KEY)
    return isinstance(expected, str) and bool(given) and hmac.compare_digest(expected.encode(), given.encode())


def require_token() -> None:
    """403 `csrf_failed` unless the request's header holds this session's token."""
    expected, given = session.get(SESSION_KEY), request.headers.get(HEADER, "")
    if not isinstance(expected, str) or not given or not hmac.compare_digest(expected.encode(), given.encode()):
        raise Forbidden(f"send this page's {HEADER} header; reload the page if the session changed",
                        code="csrf_failed")
