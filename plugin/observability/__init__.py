"""Observability: JSON logs with request ids, secret redaction, Prometheus metrics."""
from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Request ids, request metrics and /metrics. Log handlers are the process's business
    (`likely serve`, `likely scheduler`, `likely worker` call `logs.configure_from_settings`)."""
    from plugin.observability import http
    from plugin.observability.redaction import redact, secrets_in_settings
    from plugin.settings import settings_schema
    # Known secret values are masked wherever this process redacts (logs, job run errors).
    for value in secrets_in_settings(app.config["LIKELY"], settings_schema()["properties"]):
        redact.add(value)
    http.init_app(app)
