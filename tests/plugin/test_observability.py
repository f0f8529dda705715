"""Observability: JSON logs with request ids, /metrics, secret redaction."""
from __future__ import annotations

import io
import json
import logging
import os
import socket
import subprocess
import sys
import textwrap
from datetime import datetime, timezone
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import insert

from plugin import create_app, workspaces
from plugin.jobs import runner
from plugin.observability import logs
from plugin.observability.metrics import record_delivery
from plugin.observability.redaction import Redactor
from plugin.store.tables import scores
from tests.helpers import API_KEY, WEBHOOK_SECRET, bearer, post_signed
from tests.plugin.jobs_support import add_prediction, wait_until

ROOT = Path(__file__).resolve().parents[2]
LIKELY = str(Path(sys.executable).parent / "likely")


@pytest.fixture
def log_lines():
    """Every log record of the process as likely's JSON lines, parsed."""
    stream = io.StringIO()
    logs.configure("INFO", stream)

    def lines() -> list[dict]:
        return [json.loads(line) for line in stream.getvalue().splitlines()]
    return lines


def samples(client, name: str, headers=None) -> dict[tuple, float]:
    """The samples named `name` on /metrics, keyed by their sorted labels."""
    body = client.get("/metrics", headers=headers or {}).get_data(as_text=True)
    found = {}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            if sample.name == name:
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def value(client, name: str, **labels) -> float:
    return samples(client, name).get(tuple(sorted(labels.items())), 0.0)


# --- request ids and JSON logs ------------------------------------------------------------

def test_every_log_line_of_a_request_carries_its_request_id(app, log_lines):
    @app.get("/boom")
    def boom():
        logging.getLogger("likely.test").warning("about to fail")
        raise RuntimeError("kaput")
    response = app.test_client().get("/boom", headers={"X-Request-Id": "req-42.a"})
    assert response.status_code == 500 and response.headers["X-Request-Id"] == "req-42.a"
    lines = log_lines()
    assert [line["message"] for line in lines][:1] == ["about to fail"]
    assert {line["request_id"] for line in lines} == {"req-42.a"} and len(lines) == 3  # warning, error, access
    access = lines[-1]
    assert access["logger"] == "likely.access" and access["status"] == 500 and access["endpoint"] == "/boom"
    assert {"time", "level", "duration_ms", "method", "path"} <= set(access)
    error = lines[1]
    assert error["level"] == "ERROR" and "RuntimeError: kaput" in error["exc_info"]


def test_a_request_id_is_generated_when_missing_or_unusable(client, log_lines):
    generated = client.get("/healthz").headers["X-Request-Id"]
    replaced = client.get("/healthz", headers={"X-Request-Id": "bad id\u00e9" + "x" * 200}).headers["X-Request-Id"]
    assert len(generated) == 32 and len(replaced) == 32 and generated != replaced
    assert [line["request_id"] for line in log_lines()] == [generated, replaced]


def test_lines_outside_a_request_have_no_request_id(client, log_lines):
    client.get("/healthz")
    logging.getLogger("likely.test").info("between requests")
    assert "request_id" not in log_lines()[-1]


def test_job_runs_log_their_job_and_run_key(engine, log_lines, isolated_registry):
    isolated_registry.register("work", lambda engine, **params: {"n": 1})
    runner.execute(engine, "work:default", datetime(2026, 11, 1, 3, tzinfo=timezone.utc), kind="work", workspace_id=1)
    finished = [line for line in log_lines() if line["message"] == "job work:default finished: ok"]
    assert finished and finished[0]["run_key"] == "2026-11-01T03:00:00Z" and finished[0]["counts"] == {"n": 1}


# --- redaction ----------------------------------------------------------------------------

@pytest.mark.parametrize("text, secret", [
    ("secret is whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
    ("Authorization: Bearer sk_live_0123456789abcdef", "sk_live_0123456789abcdef"),
    ("header {'Authorization': 'Basic dXNlcjpwYXNzd29yZA=='}", "dXNlcjpwYXNzd29yZA=="),
    ("connecting to postgresql+psycopg://likely:s3cr3t-pw@db:5432/likely", "s3cr3t-pw"),
    ("GET https://api.example.com/v1?api_key=AKIA1234567890&x=1", "AKIA1234567890"),
    ('{"password": "hunter22", "user": "bob"}', "hunter22"),
    ("client_secret=abc.def.ghi", "abc.def.ghi"),
])
def test_secret_shapes_are_masked(text, secret):
    masked = Redactor()(text)
    assert secret not in masked and "***" in masked


def test_ordinary_text_is_left_alone():
    text = "rescored 1200 users for prediction 7; push_tokens=3 tokens: 5; see https://example.com/a?b=c"
    assert Redactor()(text) == text


def test_known_secret_values_are_masked_wherever_they_appear():
    redact = Redactor(["plain-api-key-without-shape-123", "short"])
    assert redact("key plain-api-key-without-shape-123 used") == "key *** used"
    assert redact("short stays") == "short stays"  # too short to be a meaningful secret


def test_secrets_never_reach_the_log(app, log_lines):
    log = logging.getLogger("likely.test")
    log.info("configured %s and %s", WEBHOOK_SECRET, API_KEY)  # API_KEY is a configured (shapeless) key
    log.warning("calling provider", extra={"url": "https://u:pa55word@hooks.example.com/x",
                                           "headers": {"Authorization": "Bearer tok_0123456789"}})
    try:
        raise ConnectionError("postgresql://likely:db-pass-123@db/likely refused")
    except ConnectionError:
        log.exception("store down")
    output = json.dumps(log_lines())
    for secret in (WEBHOOK_SECRET.removeprefix("whsec_"), API_KEY, "pa55word", "tok_0123456789", "db-pass-123"):
        assert secret not in output
    assert output.count("***") >= 5


def test_a_bad_webhook_logs_no_secret_and_counts_a_failed_verification(client, log_lines):
    before = value(client, "likely_webhook_verifications_failed_total", endpoint="/webhooks/events")
    response = post_signed(client, "/webhooks/events", {"events": []}, secret="whsec_" + "A" * 40)
    assert response.status_code == 401
    assert value(client, "likely_webhook_verifications_failed_total", endpoint="/webhooks/events") == before + 1
    assert WEBHOOK_SECRET.removeprefix("whsec_") not in json.dumps(log_lines())


# --- /metrics ------------------------------------------------------------------------------

def test_requests_are_counted_by_route_rule_and_status(client, engine):
    workspaces.ensure(engine, "acme")
    rule = "/webhooks/<workspace>/events"
    before = value(client, "likely_http_requests_total", method="POST", endpoint=rule, status="401")
    client.post("/webhooks/acme/events", json={"events": []})
    client.post("/webhooks/nope/events", json={"events": []})
    assert value(client, "likely_http_requests_total", method="POST", endpoint=rule, status="401") == before + 2
    assert not any("acme" in str(labels) for labels in samples(client, "likely_http_requests_total"))
    client.get("/no/such/page")
    assert value(client, "likely_http_requests_total", method="GET", endpoint="<unmatched>", status="404") >= 1
    assert value(client, "likely_http_request_duration_seconds_count", method="POST", endpoint=rule) >= 2


def test_deliveries_and_job_runs_are_counted(client, engine, isolated_registry):
    before = value(client, "likely_deliveries_total", connector="sendgrid", outcome="sent")
    record_delivery("sendgrid", "sent", 3)
    assert value(client, "likely_deliveries_total", connector="sendgrid", outcome="sent") == before + 3
    isolated_registry.register("work", lambda engine, **params: {})
    runs_before = value(client, "likely_job_runs_total", kind="work", outcome="ok")
    runner.execute(engine, "work", datetime(2026, 11, 1, tzinfo=timezone.utc), kind="work")
    assert value(client, "likely_job_runs_total", kind="work", outcome="ok") == runs_before + 1
    assert value(client, "likely_job_run_duration_seconds_count", kind="work") >= 1
    # Store figures are cached between scrapes; a new app reads them afresh.
    fresh = create_app({"database_url": engine.url.render_as_string(hide_password=False)}).test_client()
    assert value(fresh, "likely_job_last_finished_timestamp_seconds", kind="work", outcome="ok") > 1.7e9


def test_score_distribution_per_prediction_is_read_from_the_store(client, engine):
    pid = add_prediction(engine)
    with engine.begin() as conn:
        conn.execute(insert(scores), [dict(workspace_id=1, prediction_id=pid, user_id=i, score=s, category="Low",
                                           model_id=1, scored_at=0) for i, s in enumerate([5, 15, 15.5, 50, 99.9])])
    histogram = {labels: v for labels, v in samples(client, "likely_prediction_scores_bucket").items()
                 if ("prediction", str(pid)) in labels}
    buckets = {dict(labels)["le"]: v for labels, v in histogram.items()}
    assert buckets["10.0"] == 1 and buckets["20.0"] == 3 and buckets["50.0"] == 4 and buckets["100.0"] == 5
    assert buckets["+Inf"] == 5
    assert all(dict(labels)["workspace"] == "default" for labels in histogram)
    assert value(client, "likely_prediction_scores_sum", workspace="default", prediction=str(pid)) == pytest.approx(185.4)


def test_outbox_depth_is_counted_by_status(client, engine):
    from sqlalchemy import insert

    from plugin.store.tables import outbox
    assert samples(client, "likely_outbox_messages") == {}  # an empty outbox: no series
    row = {"run_id": 1, "channel": "email", "workspace_id": 1, "campaign_id": 1, "tier": 0,
           "connector": "sendgrid", "score": 50.0, "attempts": 0, "next_attempt_at": 0, "created_ts": 0}
    with engine.begin() as conn:
        conn.execute(insert(outbox), [{**row, "user_id": uid, "idempotency_key": f"k{uid}", "status": status}
                                      for uid, status in ((1, "pending"), (2, "pending"), (3, "dead"))])
    fresh = create_app({"database_url": engine.url.render_as_string(hide_password=False)}).test_client()
    assert samples(fresh, "likely_outbox_messages") == {(("state", "dead"),): 1, (("state", "pending"),): 2}


def test_metrics_still_answer_when_the_store_is_down():
    app = create_app({"database_url": "postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2"})
    response = app.test_client().get("/metrics")
    assert response.status_code == 200 and "likely_store_up 0.0" in response.get_data(as_text=True)


def test_metrics_token_protects_metrics_when_set(app_settings):
    client = create_app({**app_settings, "metrics_token": "metrics-token-0123456789"}).test_client()
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers=bearer("wrong-token-0123456789")).status_code == 401
    assert client.get("/metrics", headers=bearer("metrics-token-0123456789")).status_code == 200


# --- several processes -------------------------------------------------------------------

def test_multiprocess_mode_sums_the_workers(tmp_path):
    """prometheus_client's multiprocess files, as gunicorn workers write them, summed at scrape."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)}
    count = "from plugin.observability.metrics import record_delivery; record_delivery('fcm', 'sent', 2)"
    for _ in range(2):
        subprocess.run([sys.executable, "-c", count], env=env, check=True)
    scrape = textwrap.dedent("""
        from plugin.observability.metrics import exposition
        print(exposition()[0].decode())
    """)
    body = subprocess.run([sys.executable, "-c", scrape], env=env, check=True, capture_output=True, text=True).stdout
    assert 'likely_deliveries_total{connector="fcm",outcome="sent"} 4.0' in body


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_likely_serve_runs_n_workers_with_json_logs_and_shared_metrics(database_url, tmp_path):
    import requests
    port = _free_port()
    env = {**os.environ, "LIKELY_DATABASE_URL": database_url, "LIKELY_API_KEYS": API_KEY,
           "LIKELY_WEB_WORKERS": "2", "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics")}
    log = tmp_path / "serve.log"
    process = subprocess.Popen([LIKELY, "serve", "--port", str(port)], env=env, cwd=tmp_path,
                               stdout=subprocess.DEVNULL, stderr=log.open("w"))
    base = f"http://127.0.0.1:{port}"

    def up():
        try:
            return requests.get(f"{base}/healthz", timeout=1).status_code == 200
        except requests.RequestException:  # not up yet, or too busy to answer within 1 s
            return False
    try:
        wait_until(up, timeout=30)
        ids = [requests.get(f"{base}/healthz", headers={"X-Request-Id": f"probe-{i}"}, timeout=5)
               .headers["X-Request-Id"] for i in range(20)]
        metrics = requests.get(f"{base}/metrics", timeout=5).text
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert ids == [f"probe-{i}" for i in range(20)]
    records = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    workers = {r["message"] for r in records if r["message"].startswith("Booting worker")}
    assert len(workers) == 2
    access = {r["request_id"] for r in records if r.get("logger") == "likely.access"}
    assert not any(r["logger"] == "gunicorn.access" for r in records)  # one access line per request
    assert {f"probe-{i}" for i in range(20)} <= access
    # Whichever worker answered the scrape, it reports every worker's requests.
    [line] = [row for row in metrics.splitlines()
              if row.startswith('likely_http_requests_total{') and 'endpoint="/healthz"' in row
              and 'status="200"' in row]
    assert float(line.rsplit(" ", 1)[1]) >= 21
