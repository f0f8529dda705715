"""The project's error values; one app error handler turns them into JSON."""
from __future__ import annotations

from typing import Any

# Our wording for a value outside a fixed set (marshmallow's OneOf `error=`), not the library's.
CHOICE_ERROR = "must be one of: {choices}"


class LikelyError(Exception):
    """An error the caller can act on: it has a status, a stable code and a message."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, details: Any = None,
                 status: int | None = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        if status:
            self.status = status
        self.details = details if details is not None else {}

    def to_dict(self) -> dict:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


class ValidationFailed(LikelyError):
    status, code = 400, "validation_failed"


class Unauthorized(LikelyError):
    status, code = 401, "unauthorized"


class Forbidden(LikelyError):
    status, code = 403, "forbidden"


class NotFound(LikelyError):
    status, code = 404, "not_found"


class Conflict(LikelyError):
    status, code = 409, "conflict"


class Unprocessable(LikelyError):
    """Well-formed, but the data cannot support what was asked (e.g. too few converters to train)."""

    status, code = 422, "unprocessable"


class PayloadTooLarge(LikelyError):
    status, code = 413, "payload_too_large"


class UnsupportedMediaType(LikelyError):
    status, code = 415, "unsupported_media_type"


class SettingsError(Exception):
    """Start-up configuration is missing or invalid; the message names the setting."""
