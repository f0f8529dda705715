"""The OpenAPI document, generated from the URL map and the marshmallow schemas views use.

Every route of the app appears (static files aside). What a view declared with `api_doc`
refines the operation; the rest — path parameters from the URL converters, security by path
prefix, the standard JSON error responses — is derived, so nothing is written twice.
"""
from __future__ import annotations

import json
import re
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Blueprint, Flask, current_app, jsonify, render_template
from marshmallow import Schema
from werkzeug.routing import AnyConverter, FloatConverter, IntegerConverter, PathConverter, Rule, UUIDConverter

from plugin.api.docs import JSON_SCHEMAS, ApiDoc, api_doc, doc_for
from plugin.api.errors import ErrorSchema
from plugin.settings import manifest

OPENAPI_VERSION = "3.1.0"
PARAMETER = re.compile(r"<(?:[^>:]+:)?([^>]+)>")
HIDDEN_ENDPOINTS = {"static"}
ERROR_RESPONSES = {
    400: ("BadRequest", "Invalid request: field errors in `details` (never a partial write)."),
    401: ("Unauthorized", "Missing or bad signature or credentials."),
    403: ("Forbidden", "Not allowed (e.g. a preview prediction, an uninstalled workspace)."),
    404: ("NotFound", "No such resource in this workspace."),
    409: ("Conflict", "Conflicts with the current state."),
    410: ("Gone", "No longer available (e.g. a segment snapshot older than the ones kept)."),
    413: ("PayloadTooLarge", "Body or batch too large."),
    415: ("UnsupportedMediaType", "Send application/json."),
    422: ("Unprocessable", "Well-formed, but the data cannot support it (e.g. too few converters to train)."),
    429: ("TooManyRequests", "Rate limited; retry later."),
}
WEBHOOK_HEADERS = (
    ("webhook-id", "Unique message id; a redelivered id is acknowledged without effect.",
     {"type": "string", "minLength": 1, "maxLength": 255}),
    ("webhook-timestamp", "Unix seconds; within five minutes of likely's clock.",
     {"type": "string", "pattern": "^[0-9]{1,12}$"}),
    ("webhook-signature", "Space-separated `v1,<base64 HMAC-SHA256 of \"id.timestamp.body\">` signatures.",
     {"type": "string", "minLength": 1}),
)
CSRF_HEADER = {"in": "header", "name": "X-CSRF-Token", "required": True, "schema": {"type": "string", "minLength": 1},
               "description": "The page's CSRF token (in its `csrf-token` meta tag); the session cookie alone is not enough."}
SECURITY_SCHEMES = {
    "apiKey": {"type": "http", "scheme": "bearer",
               "description": "The workspace's API key: `Authorization: Bearer <key>`."},
    "workspaceWebhook": {"type": "apiKey", "in": "header", "name": "webhook-signature",
                         "description": "Standard Webhooks signature with the workspace's whsec_ secret "
                                        "(with the webhook-id and webhook-timestamp headers)."},
    "partnerWebhook": {"type": "apiKey", "in": "header", "name": "webhook-signature",
                       "description": "Standard Webhooks signature with a partner secret "
                                      "(LIKELY_PARTNER_SECRETS) shared by the host platform."},
    "pageSession": {"type": "apiKey", "in": "cookie", "name": "likely_session",
                    "description": "Session cookie set by GET /login (signed link) or POST /login (API key)."},
}
SECURITY_REQUIREMENT = {"api_key": "apiKey", "webhook": "workspaceWebhook", "partner": "partnerWebhook",
                        "page": "pageSession"}

bp = Blueprint("openapi", __name__)


def _security_kind(rule: Rule, doc: ApiDoc) -> str:
    if doc.security:
        return doc.security
    if rule.rule.startswith("/v1/") or rule.rule == "/v1":
        return "api_key"
    if rule.rule.startswith("/webhooks/"):
        return "webhook"
    return "none"


def _converter_schema(converter: Any) -> dict:
    if isinstance(converter, IntegerConverter):
        schema: dict = {"type": "integer"}
        if not converter.signed:
            schema["minimum"] = 0 if converter.min is None else converter.min
        if converter.max is not None:
            schema["maximum"] = converter.max
        return schema
    if isinstance(converter, FloatConverter):
        return {"type": "number"}
    if isinstance(converter, UUIDConverter):
        return {"type": "string", "format": "uuid"}
    if isinstance(converter, AnyConverter):
        return {"type": "string", "enum": sorted(converter.items)}
    if isinstance(converter, PathConverter):
        return {"type": "string"}
    return {"type": "string", "pattern": "^[^/]+$"}


def _path(rule: Rule, doc: ApiDoc) -> tuple[str, list[dict]]:
    from plugin.workspaces import SLUG
    names = PARAMETER.findall(rule.rule)
    parameters = []
    for name in names:
        schema = doc.path.get(name) or (
            {"type": "string", "pattern": SLUG.pattern} if name == "workspace"
            else _converter_schema(rule._converters.get(name)))
        parameters.append({"in": "path", "name": name, "required": True, "schema": dict(schema)})
    return PARAMETER.sub(r"{\1}", rule.rule), parameters


def _response(status: int, spec: Any) -> dict:
    description = {200: "OK", 201: "Created", 202: "Accepted", 204: "No content", 302: "Redirect",
                   503: "Unavailable"}.get(status, "Response")
    if spec is None:
        return {"description": description}
    if isinstance(spec, (Schema, type)) and (isinstance(spec, Schema) or issubclass(spec, Schema)):
        return {"description": description, "content": {"application/json": {"schema": spec}}}
    return dict(spec)


def _operation(rule: Rule, method: str, doc: ApiDoc) -> dict:
    path, parameters = _path(rule, doc)
    kind = _security_kind(rule, doc)
    if kind in ("webhook", "partner"):
        parameters += [{"in": "header", "name": name, "required": True, "description": text, "schema": schema}
                       for name, text, schema in WEBHOOK_HEADERS]
    if kind == "page" and method != "GET":
        parameters.append(dict(CSRF_HEADER))
    if doc.query is not None:
        parameters.append({"in": "query", "schema": doc.query})
    parameters += [{"in": "header", "name": name, "required": False, "schema": dict(schema)}
                   for name, schema in doc.headers.items()]
    operation: dict[str, Any] = {
        "operationId": re.sub(r"[^A-Za-z0-9]+", "_", f"{method.lower()}{path}").strip("_"),
        "tags": list(doc.tags) or [rule.endpoint.split(".")[0]],
        "parameters": parameters,
        "responses": {str(status): _response(status, spec) for status, spec in doc.responses.items()},
        "security": [{SECURITY_REQUIREMENT[kind]: []}] if kind in SECURITY_REQUIREMENT else [],
    }
    for status in doc.errors:
        operation["responses"].setdefault(str(status), {"$ref": f"#/components/responses/{ERROR_RESPONSES[status][0]}"})
    if doc.summary:
        operation["summary"] = doc.summary
    if doc.description:
        operation["description"] = doc.description
    if doc.deprecated:
        operation["deprecated"] = True
    if doc.body is not None and method not in ("GET", "DELETE"):
        # Several schemas: the body is any one of them (e.g. a full campaign or a preset).
        body = {"anyOf": list(doc.body)} if isinstance(doc.body, (list, tuple)) else doc.body
        operation["requestBody"] = {"required": doc.body_required,
                                    "content": {doc.body_content_type: {"schema": body}}}
    return operation


def build(app: Flask) -> dict:
    """The whole document for `app`, as a dict."""
    info = manifest()
    spec = APISpec(title=info["name"], version=info["version"], openapi_version=OPENAPI_VERSION,
                   plugins=[MarshmallowPlugin()], info={"description": info["description"]})
    spec.components.schema("Error", schema=ErrorSchema)
    for name, text in ERROR_RESPONSES.values():
        spec.components.response(name, {"description": text, "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
    for name, scheme in SECURITY_SCHEMES.items():
        spec.components.security_scheme(name, scheme)
    for name, factory in sorted(JSON_SCHEMAS.items()):
        spec.components.schema(name, component={k: v for k, v in factory().items() if k != "$schema"})
    rules = sorted((r for r in app.url_map.iter_rules() if r.endpoint not in HIDDEN_ENDPOINTS),
                   key=lambda r: r.rule)
    for rule in rules:
        view = app.view_functions[rule.endpoint]
        operations = {method.lower(): _operation(rule, method, doc_for(view, method))
                      for method in sorted(rule.methods - {"HEAD", "OPTIONS"})}
        spec.path(path=PARAMETER.sub(r"{\1}", rule.rule), operations=operations)
    return spec.to_dict()


def document() -> dict:
    """The current app's document, built once (after every blueprint is registered)."""
    cached = current_app.extensions.get("likely_openapi")
    if cached is None:
        cached = current_app.extensions["likely_openapi"] = build(current_app)
    return cached


@bp.get("/openapi.json")
@api_doc(summary="This OpenAPI document", tags=["meta"], security="none", errors=(),
         responses={200: {"description": "OpenAPI 3.1 document",
                          "content": {"application/json": {"schema": {"type": "object"}}}}})
def openapi_json():
    return jsonify(document())


METHOD_ORDER = ("get", "post", "put", "patch", "delete")


def _schema_name(schema: Any) -> str | None:
    ref = schema.get("$ref", "") if isinstance(schema, dict) else ""
    return ref.rsplit("/", 1)[-1] if ref else None


def reference(document: dict) -> tuple[list, list]:
    """The document as the /docs page lists it: operations grouped by tag, then the schemas."""
    groups: dict[str, list] = {}
    for path, item in document["paths"].items():
        for method in METHOD_ORDER:
            operation = item.get(method)
            if operation is None:
                continue
            body = None
            if "requestBody" in operation:
                (content_type, media), = operation["requestBody"]["content"].items()
                schema = media["schema"]
                names = [n for n in map(_schema_name, schema.get("anyOf", [schema])) if n]
                body = {"content_type": content_type, "required": operation["requestBody"]["required"],
                        "schemas": names, "inline": json.dumps(schema)}
            responses = []
            for status, response in sorted(operation["responses"].items()):
                if "$ref" in response:
                    response = document["components"]["responses"][_schema_name(response)]
                bodies = [(media, _schema_name(content.get("schema", {})))
                          for media, content in response.get("content", {}).items()]
                responses.append({"status": status, "description": response["description"], "bodies": bodies})
            security = ", ".join(name for requirement in operation["security"] for name in requirement)
            parameters = [{**p, "schema": json.dumps(p.get("schema", {}))} for p in operation["parameters"]]
            groups.setdefault(operation["tags"][0], []).append({
                "id": operation["operationId"], "method": method.upper(), "path": path,
                "summary": operation.get("summary"), "description": operation.get("description"),
                "security": security, "parameters": parameters, "body": body, "responses": responses})
    schemas = [(name, json.dumps(schema, indent=2)) for name, schema in sorted(document["components"]["schemas"].items())]
    return sorted(groups.items()), schemas


@bp.get("/docs")
@api_doc(summary="This API's reference, rendered from the OpenAPI document (HTML)", tags=["meta"],
         security="none", errors=(), responses={200: {"description": "The reference page",
                                                      "content": {"text/html": {"schema": {"type": "string"}}}}})
def api_reference():
    doc = document()
    groups, schemas = reference(doc)
    return render_template("api_docs.html", doc=doc, groups=groups, schemas=schemas)


def host_manifest() -> dict:
    """manifest.json as the host reads it: the connector registry's settings schema in place."""
    from plugin import workspace_settings
    resolved = dict(manifest())
    resolved["workspace_settings"] = workspace_settings.schema()
    return resolved


@bp.get("/manifest.json")
@api_doc(summary="The plugin manifest the host reads (identity, webhooks, settings form, jobs, filters)",
         tags=["meta"], security="none", errors=(),
         responses={200: {"description": "manifest.json, complete",
                          "content": {"application/json": {"schema": {"type": "object"}}}}})
def manifest_json():
    return jsonify(host_manifest())
