"""Observability: JSON logs with request ids, secret redaction, Prometheus metrics (the HTTP
side — request ids, access log, /metrics — is `plugin/api/observability.py`)."""
