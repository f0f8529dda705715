"""Property-based contract test: schemathesis drives the live app from its own OpenAPI document.

Every operation is called with generated valid and invalid input, signed as a host signs
(Standard Webhooks over the exact bytes sent) or with the bearer key, and every answer must
be no 5xx, a documented status, the documented content type and a body matching its schema.

Driven through schemathesis' Python API (`operation.as_strategy`) with hypothesis, rather than
`schemathesis.pytest.from_fixture`, whose lazy runner reads a pytest internal (`Node._nodeid`)
that pytest 9.2 removed.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core import NOT_SET
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from plugin.api.page_auth import signed_link
from tests.helpers import API_KEY, PARTNER_SECRET, WEBHOOK_SECRET
from tests.plugin.pages_support import csrf_token

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, response_headers_conformance]
MAX_EXAMPLES = 25
# With valid input these must succeed at least once: proof the signing and keys are right,
# not merely that every request bounced off with a documented 401.
MUST_SUCCEED = {"GET /healthz", "GET /login", "GET /v1/settings", "POST /webhooks/events", "POST /webhooks/users",
                "POST /webhooks/users/delete", "POST /webhooks/install", "POST /webhooks/{workspace}/events",
                "GET /predictions", "GET /predictions/new", "GET /docs", "GET /v1/predictions", "GET /v1/segments",
                "GET /v1/campaigns", "GET /v1/campaigns/presets", "GET /v1/jobs"}
PARTNER_PATHS = {"/webhooks/install", "/webhooks/uninstall"}
PAGES = "https://localhost"


def page_session(app) -> dict:
    """A signed-in page session's cookie and the CSRF token its page embeds (for the pages' calls)."""
    client = app.test_client()
    client.get(signed_link(WEBHOOK_SECRET, "default", int(time.time()) + 600, "/predictions"), base_url=PAGES)
    html = client.get("/predictions", base_url=PAGES).get_data(as_text=True)
    cookie = client.get_cookie("likely_session", domain=PAGES.removeprefix("https://")).value
    return {"cookies": {"likely_session": cookie}, "headers": {"X-CSRF-Token": csrf_token(html)}}


def credentials_for(case, page: dict) -> dict:
    """Headers (and the exact body bytes they sign) a host — or a page — would send for this case."""
    path = case.operation.path
    if path.startswith("/v1/"):
        return {"headers": {"Authorization": f"Bearer {API_KEY}"}}
    if path.startswith(("/predictions", "/pages/")):
        return page
    if not path.startswith("/webhooks/"):
        return {}
    body = _exact_body(case)
    secret = PARTNER_SECRET if path in PARTNER_PATHS else WEBHOOK_SECRET
    return {"headers": _signed(body, secret), "data": body}


def _signed(body: bytes, secret: str) -> dict[str, str]:
    """Standard Webhooks headers over raw bytes (invalid input need not be UTF-8)."""
    webhook_id, timestamp = f"msg_{uuid.uuid4().hex}", str(int(time.time()))
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return {"webhook-id": webhook_id, "webhook-timestamp": timestamp,
            "webhook-signature": "v1," + base64.b64encode(digest).decode()}


def _exact_body(case) -> bytes:
    """The bytes sent: JSON as schemathesis would send it, raw bytes (invalid input) as they are."""
    if case.body is NOT_SET:
        return b""
    if isinstance(case.body, bytes):
        return case.body
    try:
        return json.dumps(case.body).encode()
    except TypeError:  # schemathesis' binary placeholder: sent as its JSON string
        return json.dumps(str(case.body)).encode()


def _operations(app, mode: GenerationMode):
    """Every operation; for invalid input, those that take any input to make invalid."""
    document = app.test_client().get("/openapi.json").json
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    # schemathesis leaves out the document's own endpoint; everything else is exercised.
    documented = {f"{m.upper()} {p}" for p, item in document["paths"].items() for m in item} - {"GET /openapi.json"}
    assert {op.label for op in operations} == documented
    if mode is GenerationMode.NEGATIVE:
        operations = [op for op in operations if {"parameters", "requestBody"} & {
            key for key, value in document["paths"][op.path][op.method.lower()].items() if value}]
    return operations


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["valid", "invalid"])
def test_the_app_keeps_its_contract(hosted_app, mode):
    succeeded = set()
    page = page_session(hosted_app)
    for operation in _operations(hosted_app, mode):
        # Workspace paths aim at the default workspace, which the test secret opens.
        overrides = {"path_parameters": {"workspace": "default"}} if (
            "{workspace}" in operation.path and mode is GenerationMode.POSITIVE) else {}

        @given(case=operation.as_strategy(generation_mode=mode, **overrides))
        @settings(max_examples=MAX_EXAMPLES, derandomize=True, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def keeps_contract(case):
            response = case.call_and_validate(checks=CHECKS, **credentials_for(case, page))
            if response.status_code < 300:
                succeeded.add(operation.label)  # noqa: B023  (run within this iteration)

        try:
            keeps_contract()
        except Exception as error:
            error.add_note(f"operation: {operation.label} ({mode.value})")
            raise
    if mode is GenerationMode.POSITIVE:
        assert MUST_SUCCEED <= succeeded
