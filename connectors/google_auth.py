"""OAuth2 bearer tokens from a Google service-account key, through google-auth.

Shared by FCM and the Data Manager API. The token request goes through the connector's
own session (so tests fake it with `responses`) with the connector's timeout; the key's
`token_uri` can be overridden by a setting (the benchmark points it at its fake server).
"""
from __future__ import annotations

import json
import threading
from typing import Callable, Sequence

import google.auth.exceptions
import google.auth.transport.requests
import requests
from google.oauth2 import service_account

from .errors import ConfigurationError, RetriableError
from .net import provider_url
from .settings import Redactor

# Service-account keys name Google's token endpoint; nothing else gets the signed assertion.
TOKEN_HOSTS = ["oauth2.googleapis.com"]
TOKEN_URI = provider_url(TOKEN_HOSTS, optional=True, title="OAuth token URI (empty: the key's own)")


class _TimedRequest(google.auth.transport.requests.Request):
    """google-auth's requests transport, with our timeout on every token call, only to an
    allowed host and never following a redirect."""

    def __init__(self, session: requests.Session, timeout: float, check: Callable[[str], None]):
        super().__init__(session=session)
        self._timeout = timeout
        self._check = check

    def __call__(self, url, method="GET", body=None, headers=None, timeout=None, **kwargs):
        self._check(url)
        return super().__call__(url, method=method, body=body, headers=headers,
                                timeout=self._timeout, allow_redirects=False, **kwargs)


class ServiceAccountToken:
    """A cached, thread-safe bearer token; secrets it handles are registered with the redactor."""

    def __init__(self, key_json: str, scopes: Sequence[str], *, session: requests.Session,
                 timeout: float, redact: Redactor, check: Callable[[str], None],
                 token_uri: str | None = None):
        try:
            info = json.loads(key_json)
        except (TypeError, ValueError):
            raise ConfigurationError("service_account_json is not valid JSON") from None
        if not isinstance(info, dict):
            raise ConfigurationError("service_account_json must be a JSON object")
        for field in ("private_key", "private_key_id"):
            redact.add(info.get(field))
        if token_uri:
            info["token_uri"] = token_uri
        try:
            self.credentials = service_account.Credentials.from_service_account_info(
                info, scopes=list(scopes))
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigurationError(
                redact(f"service account key rejected: {type(exc).__name__}: {exc}")[:200]) from None
        self.client_email = info.get("client_email")
        self._redact = redact
        self._request = _TimedRequest(session, timeout, check)
        self._lock = threading.Lock()

    def headers(self) -> dict[str, str]:
        with self._lock:
            if not self.credentials.valid:
                self._refresh()
            return {"Authorization": f"Bearer {self.credentials.token}"}

    def invalidate(self, token_header: str) -> None:
        """Forget a token the API rejected (unless another thread already replaced it)."""
        with self._lock:
            if f"Bearer {self.credentials.token}" == token_header:
                self.credentials.token = None

    def _refresh(self) -> None:
        try:
            self.credentials.refresh(self._request)
        except google.auth.exceptions.TransportError:
            raise RetriableError("oauth_token_endpoint_unreachable") from None
        except google.auth.exceptions.RefreshError as exc:
            reason = self._redact(f"oauth_token_refused: {exc.args[0] if exc.args else ''}")[:200]
            if getattr(exc, "retryable", False):
                raise RetriableError(reason) from None
            raise ConfigurationError(reason) from None
        self._redact.add(self.credentials.token)


def request_with_token(connector, token: ServiceAccountToken, method: str, url: str, *,
                       headers: dict | None = None, refresh_on_401=lambda response: True,
                       **kwargs) -> requests.Response:
    """Call a Google API with a bearer token; a 401 (expired token) gets one fresh token and retry."""
    response = None
    for attempt in (1, 2):
        auth = token.headers()
        response = connector.request(method, url, headers={**(headers or {}), **auth}, **kwargs)
        if response.status_code == 401 and attempt == 1 and refresh_on_401(response):
            token.invalidate(auth["Authorization"])
            continue
        break
    return response


def google_rpc_error(response: requests.Response) -> dict:
    """The `error` object of a Google API error body (code, message, status, details), or {}."""
    try:
        body = response.json()
    except ValueError:
        return {}
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}
