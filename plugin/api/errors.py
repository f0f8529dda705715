"""Every error leaves as JSON {"error": {"code", "message", "details"}}; never HTML or a trace."""
from __future__ import annotations

import logging

from flask import Flask, current_app, jsonify
from marshmallow import Schema, ValidationError, fields
from sqlalchemy.exc import DBAPIError
from werkzeug.exceptions import HTTPException

from plugin.errors import LikelyError
from plugin.store import timeouts

log = logging.getLogger(__name__)


class ErrorBodySchema(Schema):
    code = fields.String(required=True, metadata={"description": "Stable machine-readable code."})
    message = fields.String(required=True, metadata={"description": "What went wrong, for a person."})
    details = fields.Dict(required=True, metadata={"description": "Field errors or facts (may be empty)."})


class ErrorSchema(Schema):
    """Every error response: {"error": {"code", "message", "details"}}."""

    error = fields.Nested(ErrorBodySchema, required=True)


def _json(status: int, code: str, message: str, details=None):
    response = jsonify({"error": {"code": code, "message": message, "details": details or {}}})
    response.status_code = status
    return response


def init_app(app: Flask) -> None:
    @app.errorhandler(LikelyError)
    def likely_error(error: LikelyError):
        return _json(error.status, error.code, error.message, error.details)

    @app.errorhandler(ValidationError)
    def validation_error(error: ValidationError):
        return _json(400, "validation_failed", "the request has invalid fields", error.normalized_messages())

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        code = (error.name or "error").lower().replace(" ", "_")
        response = _json(error.code or 500, code, error.description or error.name)
        if error.code == 405 and error.valid_methods:
            response.headers["Allow"] = ", ".join(error.valid_methods)
        return response

    @app.errorhandler(DBAPIError)
    def database_error(error: DBAPIError):
        if timeouts.is_statement_timeout(error):
            log.warning("a statement ran past LIKELY_STATEMENT_TIMEOUT_MS and was stopped")
            limit = current_app.config["LIKELY"]["statement_timeout_ms"]
            return _json(503, "query_timeout", f"the query took longer than {limit} ms and was stopped; "
                         "narrow it or try again later", {"timeout_ms": limit})
        return unexpected(error)

    @app.errorhandler(Exception)
    def unexpected(error: Exception):
        # Logged with its trace for the operator; the caller sees no internals.
        log.exception("unhandled error")
        return _json(500, "internal_error", "an unexpected error occurred; it has been logged")
