"""The OpenAPI document is the contract (issue 16, point 6).

Walks the app's URL map and reads each view's source (with the helpers of its module it calls):
a route that reads a body, a query string or a header it does not document, or that answers a
status its operation does not list, fails here — before any client trips over it.
"""
from __future__ import annotations

import ast
import inspect
import re
import sys
import textwrap
from functools import lru_cache

from plugin.api.docs import doc_for
from plugin.api.openapi import build

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
BODY_READERS = ("json_body(", "_optional_body(", "request.get_json", "request.get_data", "request.json",
                "request.form", "request.files", "request.stream")
QUERY_READERS = ("request.args",)
HEADER_READ = re.compile(r"request\.headers(?:\.get\(|\[)\s*[\"']([A-Za-z0-9-]+)[\"']")
# OpenAPI ignores header parameters with these names; security schemes describe them.
IMPLICIT_HEADERS = {"authorization", "accept", "content-type", "webhook-id", "webhook-timestamp", "webhook-signature"}
RESPONDERS = {"jsonify", "render_template", "Response", "make_response", "redirect"}
ERROR_STATUS = {"ValidationFailed": 400, "Unauthorized": 401, "Forbidden": 403, "NotFound": 404, "Conflict": 409,
                "Unprocessable": 422, "PayloadTooLarge": 413, "UnsupportedMediaType": 415}


@lru_cache(maxsize=None)
def _module_functions(module_name: str) -> dict[str, ast.FunctionDef]:
    tree = ast.parse(inspect.getsource(sys.modules[module_name]))
    return {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}


def _reachable_source(view) -> str:
    """The view's source and that of every function of its module it calls, transitively."""
    view = inspect.unwrap(view)
    functions = _module_functions(view.__module__)
    seen, sources = set(), []
    pending = [ast.parse(textwrap.dedent(inspect.getsource(view))).body[0]]
    while pending:
        node = pending.pop()
        sources.append(ast.unparse(node))
        for call in ast.walk(node):
            if isinstance(call, ast.Call) and isinstance(call.func, ast.Name):
                name = call.func.id
                if name in functions and name not in seen and name != view.__name__:
                    seen.add(name)
                    pending.append(functions[name])
    return "\n".join(sources)


def _is_response(node: ast.expr) -> bool:
    """A response body: jsonify(…), render_template(…), Response(…), a string — not any tuple."""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, (str, bytes))
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in RESPONDERS


def _returned_statuses(source: str) -> set[int]:
    """Status codes a view writes itself: `return body, 201`, `…, 201 if created else 200`."""
    statuses: set[int] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Return) and isinstance(node.value, ast.Tuple) and len(node.value.elts) >= 2 \
                and _is_response(node.value.elts[0]):
            for part in ast.walk(node.value.elts[1]):
                if isinstance(part, ast.Constant) and isinstance(part.value, int) and 100 <= part.value < 600:
                    statuses.add(part.value)
        if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and isinstance(node.exc.func, ast.Name):
            if node.exc.func.id in ERROR_STATUS:
                statuses.add(ERROR_STATUS[node.exc.func.id])
    return statuses


def _operations(app):
    document = build(app)
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        view = app.view_functions[rule.endpoint]
        path = re.sub(r"<(?:[^>:]+:)?([^>]+)>", r"{\1}", rule.rule)
        for method in sorted(rule.methods & set(METHODS)):
            yield (f"{method} {path}", view, doc_for(view, method), document["paths"][path][method.lower()])


def test_every_route_documents_what_it_reads_and_every_status_it_answers(app):
    problems = []
    for label, view, _doc, operation in _operations(app):
        source = _reachable_source(view)
        parameters = operation.get("parameters", [])
        if any(reader in source for reader in BODY_READERS) and "requestBody" not in operation:
            problems.append(f"{label}: reads a request body it does not document")
        if "requestBody" in operation and not any(reader in source for reader in BODY_READERS) \
                and "receive(" not in source:
            problems.append(f"{label}: documents a request body it never reads")
        if any(reader in source for reader in QUERY_READERS) and not any(p["in"] == "query" for p in parameters):
            problems.append(f"{label}: reads a query string it does not document")
        documented_headers = {p["name"].lower() for p in parameters if p["in"] == "header"}
        for header in HEADER_READ.findall(source):
            if header.lower() not in documented_headers | IMPLICIT_HEADERS:
                problems.append(f"{label}: reads header {header} it does not document")
        listed = {int(status) for status in operation["responses"]}
        for status in _returned_statuses(source) - listed:
            problems.append(f"{label}: answers {status}, which it does not list")
    assert problems == []


def test_every_success_documents_its_body_schema(app):
    """A 2xx with a body names its schema; only 204 (and 302 redirects) have none."""
    problems = []
    for label, _view, _doc, operation in _operations(app):
        for status, response in operation["responses"].items():
            if not status.startswith("2") or status == "204" or "$ref" in response:
                continue
            content = response.get("content") or {}
            if not content or not all("schema" in media for media in content.values()):
                problems.append(f"{label}: {status} has no documented body schema")
    assert problems == []


def test_v1_operations_take_the_validating_schemas(client):
    """The documented bodies and queries are the very schemas the views load with."""
    from plugin.api.jobs import JobRunsQuerySchema
    from plugin.api.segments import MembersQuerySchema
    from plugin.campaigns.schema import CampaignInput, PresetRequest
    from plugin.predictions.schemas import PredictionSchema
    document = client.get("/openapi.json").json
    paths, schemas = document["paths"], document["components"]["schemas"]
    body = paths["/v1/predictions"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/Prediction"}
    assert set(schemas["Prediction"]["required"]) == {n for n, f in PredictionSchema().fields.items() if f.required}
    campaign = paths["/v1/campaigns"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert campaign == {"anyOf": [{"$ref": "#/components/schemas/CampaignInput"},
                                  {"$ref": "#/components/schemas/PresetRequest"}]}
    assert set(schemas["CampaignInput"]["properties"]) == set(CampaignInput().fields)
    assert set(schemas["PresetRequest"]["properties"]) == set(PresetRequest().fields)
    members = {p["name"] for p in paths["/v1/segments/{segment_id}/members"]["get"]["parameters"] if p["in"] == "query"}
    assert members == set(MembersQuerySchema().fields)
    jobs = {p["name"] for p in paths["/v1/jobs"]["get"]["parameters"] if p["in"] == "query"}
    assert jobs == set(JobRunsQuerySchema().fields)
    created = paths["/v1/predictions"]["post"]["responses"]
    assert "201" in created and "200" not in created
    assert paths["/v1/segments/{segment_id}"]["delete"]["responses"]["204"] == {"description": "No content"}
    assert "422" in paths["/v1/predictions/{prediction_id}/train"]["post"]["responses"]
    header = [p for p in paths["/v1/campaigns/{campaign_id}/runs"]["post"]["parameters"] if p["in"] == "header"]
    assert [h["name"] for h in header] == ["Idempotency-Key"]


def test_the_reference_page_renders_every_operation(client):
    document = client.get("/openapi.json").json
    page = client.get("/docs")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    for path, item in document["paths"].items():
        for method in item:
            assert f'data-method="{method.upper()}" data-path="{path}"' in html, (method, path)
    assert 'id="schema-CampaignInput"' in html and 'href="#schema-Prediction"' in html
