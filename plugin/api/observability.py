"""Per-request observability: a request id on every log line and response, metrics, access log."""
from __future__ import annotations

import hmac
import logging
import re
import time
import uuid

from flask import Flask, Response, current_app, g, request

from plugin.api.docs import api_doc
from plugin.errors import Unauthorized
from plugin.observability import logs, metrics
from plugin.observability.collectors import StoreCollector
from plugin.observability.redaction import redact, secrets_in_settings
from plugin.settings import settings_schema

access_log = logging.getLogger("likely.access")
log = logging.getLogger(__name__)

# A caller's id is kept only if it is short and plain: it is echoed in headers and logs.
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
UNMATCHED = "<unmatched>"


def init_app(app: Flask) -> None:
    """Request ids, request metrics and /metrics. Log handlers are the process's business
    (`likely serve`, `likely scheduler`, `likely worker` call `logs.configure_from_settings`)."""
    # Known secret values are masked wherever this process redacts (logs, job run errors).
    for value in secrets_in_settings(app.config["LIKELY"], settings_schema()["properties"]):
        redact.add(value)
    app.before_request(_start)
    app.after_request(_finish)
    app.teardown_request(_unbind)
    app.extensions["likely_metrics"] = StoreCollector(app.extensions["likely_engine"])
    app.add_url_rule("/metrics", "metrics", _metrics, methods=["GET"])
    if not app.config["LIKELY"].get("metrics_token"):
        # Said loudly at every start: production (LIKELY_ENVIRONMENT=production) refuses to start so.
        log.warning("/metrics is OPEN: anyone who can reach this server reads its metrics; set "
                    "LIKELY_METRICS_TOKEN (required with LIKELY_ENVIRONMENT=production) or keep the "
                    "port off every public network")


def _start() -> None:
    incoming = request.headers.get("X-Request-Id", "")
    g.request_id = incoming if REQUEST_ID.match(incoming) else uuid.uuid4().hex
    g.request_started = time.perf_counter()
    g.log_token = logs.bind(request_id=g.request_id)


def _finish(response: Response) -> Response:
    request_id = g.get("request_id") or uuid.uuid4().hex
    response.headers["X-Request-Id"] = request_id
    endpoint = request.url_rule.rule if request.url_rule else UNMATCHED
    seconds = time.perf_counter() - g.get("request_started", time.perf_counter())
    metrics.REQUESTS.labels(request.method, endpoint, str(response.status_code)).inc()
    metrics.REQUEST_SECONDS.labels(request.method, endpoint).observe(seconds)
    # The path without its query string: queries are where secrets would hide.
    access_log.info("%s %s %s", request.method, request.path, response.status_code,
                    extra={"method": request.method, "path": request.path, "endpoint": endpoint,
                           "status": response.status_code, "duration_ms": round(seconds * 1000, 2),
                           "remote_addr": request.remote_addr})
    return response


def _unbind(_error: BaseException | None) -> None:
    token = g.pop("log_token", None)
    if token is not None:
        logs.unbind(token)


@api_doc(summary="Prometheus metrics (text format)", tags=["meta"], security="none", errors=(401,),
         description="Needs `Authorization: Bearer <LIKELY_METRICS_TOKEN>` when that setting is set.",
         responses={200: {"description": "Prometheus exposition format",
                          "content": {"text/plain": {"schema": {"type": "string"}}}}})
def _metrics():
    token = current_app.config["LIKELY"].get("metrics_token")
    if token:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
            raise Unauthorized("/metrics needs Authorization: Bearer <LIKELY_METRICS_TOKEN>",
                               code="invalid_credentials")
    body, content_type = metrics.exposition(current_app.extensions["likely_metrics"])
    return Response(body, content_type=content_type)
