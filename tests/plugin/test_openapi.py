"""The OpenAPI document: every route, generated from the schemas that validate, valid OpenAPI 3."""
from __future__ import annotations

import re

from flask import jsonify
from marshmallow import Schema, fields
from openapi_spec_validator import validate

from plugin.api import v1
from plugin.api.docs import STANDARD_ERRORS, api_doc
from plugin.api.openapi import ERROR_RESPONSES, build

METHODS = {"get", "post", "put", "patch", "delete"}


def _operations(document: dict) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, item in document["paths"].items() for method in item if method in METHODS}


def _routes(app) -> set[tuple[str, str]]:
    return {(method, re.sub(r"<(?:[^>:]+:)?([^>]+)>", r"{\1}", rule.rule))
            for rule in app.url_map.iter_rules() if rule.endpoint != "static"
            for method in rule.methods - {"HEAD", "OPTIONS"}}


def test_every_route_is_documented_and_nothing_else(app, client):
    document = client.get("/openapi.json").json
    assert _operations(document) == _routes(app)
    assert {"/webhooks/events", "/webhooks/{workspace}/events", "/webhooks/install", "/v1/settings",
            "/healthz", "/login"} <= set(document["paths"])


def test_the_document_is_valid_openapi_3(client):
    document = client.get("/openapi.json").json
    assert document["openapi"].startswith("3.")
    validate(document)


def test_webhooks_and_v1_carry_their_security_and_errors(client):
    document = client.get("/openapi.json").json
    schemes = document["components"]["securitySchemes"]
    assert schemes["apiKey"] == {"type": "http", "scheme": "bearer", "description": schemes["apiKey"]["description"]}
    assert schemes["workspaceWebhook"]["in"] == "header" and schemes["partnerWebhook"]["name"] == "webhook-signature"
    events = document["paths"]["/webhooks/{workspace}/events"]["post"]
    headers = {p["name"] for p in events["parameters"] if p["in"] == "header" and p["required"]}
    assert headers == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    assert events["security"] == [{"workspaceWebhook": []}]
    assert {p["name"] for p in events["parameters"] if p["in"] == "path"} == {"workspace"}
    assert document["paths"]["/webhooks/install"]["post"]["security"] == [{"partnerWebhook": []}]
    assert document["paths"]["/v1/settings"]["get"]["security"] == [{"apiKey": []}]
    assert document["paths"]["/healthz"]["get"]["security"] == []
    for status in STANDARD_ERRORS:
        name = ERROR_RESPONSES[status][0]
        assert events["responses"][str(status)] == {"$ref": f"#/components/responses/{name}"}
        content = document["components"]["responses"][name]["content"]["application/json"]
        assert content["schema"] == {"$ref": "#/components/schemas/Error"}
    error = document["components"]["schemas"]["Error"]
    assert error["required"] == ["error"]
    body = document["components"]["schemas"]["ErrorBody"]
    assert set(body["properties"]) == {"code", "message", "details"} and set(body["required"]) == {"code", "message", "details"}


def test_request_bodies_come_from_the_validating_schemas(client):
    from plugin.ingest.schemas import EventSchema
    document = client.get("/openapi.json").json
    body = document["paths"]["/webhooks/events"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/EventBatch"}
    event = document["components"]["schemas"]["Event"]
    assert set(event["properties"]) == set(EventSchema().fields)
    assert set(event["required"]) == {n for n, f in EventSchema().fields.items() if f.required}
    # The settings form is documented with manifest.json's own JSON Schema, connectors included.
    settings = document["components"]["schemas"]["WorkspaceSettings"]
    assert "sendgrid" in settings["properties"]["connectors"]["properties"]
    shown = document["components"]["schemas"]["WorkspaceSettingsShown"]
    assert shown["properties"]["host"]["properties"]["api_key"]["enum"] == ["********"]


def test_an_area_documents_its_views_with_one_decorator(app):
    """The way every area adds endpoints: undecorated views appear too, with derived parts."""
    class Thing(Schema):
        name = fields.String(required=True)

    class ThingQuery(Schema):
        limit = fields.Integer(metadata={"description": "page size"})

    bp = v1.blueprint("things", __name__, "/things")

    @bp.post("")
    @api_doc(body=Thing, responses={201: Thing}, summary="Create a thing", tags=["things"])
    def create():
        return jsonify({}), 201

    @bp.get("/<int:thing_id>")
    def show(thing_id):  # undecorated
        return jsonify({})

    @bp.get("")
    @api_doc(query=ThingQuery, responses={200: Thing(many=True)}, errors=(401,))
    def index():
        return jsonify([])
    app.register_blueprint(bp)
    document = build(app)
    validate(document)
    created = document["paths"]["/v1/things"]["post"]
    assert created["summary"] == "Create a thing" and created["tags"] == ["things"]
    assert created["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Thing"}
    assert created["responses"]["201"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Thing"}
    assert created["security"] == [{"apiKey": []}]
    listed = document["paths"]["/v1/things"]["get"]
    assert [p["name"] for p in listed["parameters"] if p["in"] == "query"] == ["limit"]
    assert set(listed["responses"]) == {"200", "401"}
    assert listed["responses"]["200"]["content"]["application/json"]["schema"]["type"] == "array"
    shown = document["paths"]["/v1/things/{thing_id}"]["get"]
    assert shown["parameters"] == [{"in": "path", "name": "thing_id", "required": True,
                                    "schema": {"type": "integer", "minimum": 0}}]
    assert set(shown["responses"]) == {"200", *map(str, STANDARD_ERRORS)}
    assert shown["security"] == [{"apiKey": []}]


def test_the_document_is_the_built_one_and_stable(app, client):
    assert client.get("/openapi.json").json == build(app)
    assert client.get("/openapi.json").json == client.get("/openapi.json").json
