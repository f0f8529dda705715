"""The run log: GET /v1/jobs (scoped to the caller's workspace) and `likely jobs`."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from click.testing import CliRunner

from plugin import workspaces
from plugin.cli import cli
from plugin.jobs import runner
from tests.helpers import API_KEY, bearer

ACME_KEY = "acme-key-0123456789abcdef"
T0 = datetime(2026, 11, 1, 3, 0, tzinfo=timezone.utc)


def record_runs(engine, isolated_registry):
    """Runs in `default` (ok, failed) and `acme` (ok), plus a system job."""
    acme = workspaces.ensure(engine, "acme")
    workspaces.add_api_key(engine, acme, ACME_KEY)
    isolated_registry.register("work", lambda engine, **params: {"rows": 3})

    def broken(engine, **params):
        raise ValueError("bad things")
    isolated_registry.register("broken", broken)
    for day in range(3):
        runner.execute(engine, "work:default", T0 + timedelta(days=day), kind="work", workspace_id=1)
    runner.execute(engine, "broken:default", T0, kind="broken", workspace_id=1)
    runner.execute(engine, "work:acme", T0, kind="work", workspace_id=acme.id)
    runner.execute(engine, "prune_job_runs", T0, kind="work")
    return acme


def test_runs_are_listed_newest_first_for_the_callers_workspace_only(client, engine, isolated_registry):
    record_runs(engine, isolated_registry)
    response = client.get("/v1/jobs", headers=bearer(API_KEY))
    assert response.status_code == 200
    runs = response.json["runs"]
    assert [r["job_id"] for r in runs] == ["broken:default", "work:default", "work:default", "work:default"]
    assert runs[0]["outcome"] == "failed" and runs[0]["error"] == "ValueError: bad things"
    ok = runs[1]
    assert ok["outcome"] == "ok" and ok["counts"] == {"rows": 3} and ok["workspace"] == "default"
    assert ok["run_key"] == "2026-11-03T03:00:00Z" and ok["kind"] == "work"
    assert ok["duration_seconds"] >= 0 and ok["scheduled_at"].startswith("2026-11-03T03:00:00")
    assert response.json["next_before"] is None
    acme = client.get("/v1/jobs", headers=bearer(ACME_KEY)).json["runs"]
    assert [r["job_id"] for r in acme] == ["work:acme"]  # never another workspace's or system runs


def test_runs_are_paged_and_filtered(client, engine, isolated_registry):
    record_runs(engine, isolated_registry)
    first = client.get("/v1/jobs?limit=2", headers=bearer(API_KEY)).json
    second = client.get(f"/v1/jobs?limit=2&before={first['next_before']}", headers=bearer(API_KEY)).json
    assert len(first["runs"]) == 2 and len(second["runs"]) == 2 and second["next_before"] is None
    ids = [r["id"] for r in first["runs"] + second["runs"]]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 4
    failed = client.get("/v1/jobs?outcome=failed", headers=bearer(API_KEY)).json["runs"]
    assert [r["job_id"] for r in failed] == ["broken:default"]
    assert len(client.get("/v1/jobs?kind=work", headers=bearer(API_KEY)).json["runs"]) == 3


def test_bad_queries_and_missing_credentials_are_json_errors(client):
    assert client.get("/v1/jobs").status_code == 401
    bad = client.get("/v1/jobs?limit=0&outcome=maybe", headers=bearer(API_KEY))
    assert bad.status_code == 400 and set(bad.json["error"]["details"]) == {"limit", "outcome"}


def test_likely_jobs_lists_every_workspace_and_system_runs(engine, database_url, isolated_registry, monkeypatch):
    record_runs(engine, isolated_registry)
    monkeypatch.setenv("LIKELY_DATABASE_URL", database_url)
    result = CliRunner().invoke(cli, ["jobs", "--json"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert [line["job_id"] for line in lines][:2] == ["prune_job_runs", "work:acme"] and len(lines) == 6
    scoped = CliRunner().invoke(cli, ["jobs", "--workspace", "acme"])
    assert scoped.exit_code == 0 and "work:acme" in scoped.output and "default" not in scoped.output
    table = CliRunner().invoke(cli, ["jobs", "--outcome", "failed"]).output
    assert "broken:default" in table and "ValueError: bad things" in table


def test_likely_jobs_run_and_scheduled(engine, database_url, isolated_registry, monkeypatch):
    monkeypatch.setenv("LIKELY_DATABASE_URL", database_url)
    reconciled = CliRunner().invoke(cli, ["jobs", "reconcile"])
    assert reconciled.exit_code == 0 and json.loads(reconciled.output.splitlines()[-1])["outcome"] == "ok"
    scheduled = CliRunner().invoke(cli, ["jobs", "scheduled", "--json"]).output.splitlines()
    assert "prune_receipts:default" in {json.loads(line)["id"] for line in scheduled if line.startswith("{")}
    ran = CliRunner().invoke(cli, ["jobs", "run", "prune_receipts:default"])
    assert ran.exit_code == 0 and json.loads(ran.output.splitlines()[-1])["counts"] == {"deleted": 0}
    assert CliRunner().invoke(cli, ["jobs", "run", "nope"]).exit_code == 1
