"""Describing views for the OpenAPI document, next to the views, with the schemas they use.

    @bp.post("/things")
    @api_doc(body=ThingSchema, responses={201: ThingSchema}, summary="Create a thing", tags=["things"])
    def create_thing(): ...

`api_doc` only records metadata on the view; `plugin.api.openapi` walks the URL map, so a
view without it still appears with its path, methods, path parameters, security (by
prefix: /v1 bearer key, /webhooks Standard Webhooks headers) and the standard errors.
Decorators stack per method for a view that answers several (`method="POST"`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, TypeVar

from marshmallow import Schema

# A marshmallow schema, or a raw JSON Schema / $ref (see `json_schema`) for payloads that a
# JSON Schema validates, like the settings form from manifest.json.
SchemaLike = type[Schema] | Schema | Mapping[str, Any]
# A response is a schema (JSON body), None (no body described) or a raw OpenAPI response object.
ResponseSpec = SchemaLike | Mapping[str, Any] | None
STANDARD_ERRORS = (400, 401, 403, 404, 409, 413, 415, 429)
SECURITY = ("api_key", "webhook", "partner", "page", "none")
ATTRIBUTE = "__api_doc__"

View = TypeVar("View", bound=Callable[..., Any])
JSON_SCHEMAS: dict[str, Callable[[], Mapping[str, Any]]] = {}


def json_schema(name: str, factory: Callable[[], Mapping[str, Any]]) -> dict[str, str]:
    """Publish a JSON Schema as component `name` (built when the document is); return its $ref."""
    JSON_SCHEMAS[name] = factory
    return {"$ref": f"#/components/schemas/{name}"}


@dataclass(frozen=True)
class ApiDoc:
    summary: str | None = None
    description: str | None = None
    tags: tuple[str, ...] = ()
    body: SchemaLike | None = None
    body_content_type: str = "application/json"
    body_required: bool = True
    query: SchemaLike | None = None
    headers: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    path: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    responses: Mapping[int, ResponseSpec] = field(default_factory=lambda: {200: None})
    errors: tuple[int, ...] = STANDARD_ERRORS
    security: str | None = None  # None: decided by the path prefix
    deprecated: bool = False


def api_doc(*, summary: str | None = None, description: str | None = None,
            tags: Iterable[str] = (), body: SchemaLike | None = None,
            body_content_type: str = "application/json", body_required: bool = True,
            query: SchemaLike | None = None, headers: Mapping[str, Mapping[str, Any]] | None = None,
            path: Mapping[str, Mapping[str, Any]] | None = None,
            responses: Mapping[int, ResponseSpec] | None = None,
            errors: Iterable[int] = STANDARD_ERRORS, security: str | None = None,
            deprecated: bool = False, method: str | None = None) -> Callable[[View], View]:
    """Record how a view is documented.

    body/query: the marshmallow schemas the view loads with (body_required=False: an empty body is
    allowed); headers: {name: JSON Schema} of request headers the view reads; responses: {status: schema};
    errors: which of the standard JSON error responses apply; path: JSON Schemas of path
    parameters (default from the URL converter); security: api_key | webhook | partner |
    page | none; method: document only this method of a multi-method view.
    """
    if security is not None and security not in SECURITY:
        raise ValueError(f"security must be one of {SECURITY}, not {security!r}")
    doc = ApiDoc(summary=summary, description=description, tags=tuple(tags), body=body,
                 body_content_type=body_content_type, body_required=body_required, query=query,
                 headers=dict(headers or {}), path=dict(path or {}),
                 responses=dict(responses) if responses is not None else {200: None},
                 errors=tuple(errors), security=security, deprecated=deprecated)

    def record(view: View) -> View:
        docs = dict(getattr(view, ATTRIBUTE, {}))
        docs[method.upper() if method else None] = doc
        setattr(view, ATTRIBUTE, docs)
        return view
    return record


def doc_for(view: Callable[..., Any], method: str) -> ApiDoc:
    docs: Mapping[str | None, ApiDoc] = getattr(view, ATTRIBUTE, {})
    return docs.get(method) or docs.get(None) or ApiDoc()
