"""/v1/segments: snapshots, paging, streaming, refresh diffs, retention, isolation, refusals."""
from __future__ import annotations

import csv
import io
import json
import threading

import pytest
from sqlalchemy import func, select

from plugin import workspaces
from plugin.audiences import exports, segments
from plugin.store import transaction
from plugin.store.tables import segment_members
from tests.helpers import bearer, post_signed
from tests.plugin.audience_data import NOW, add_prediction, add_users, default_id, set_scores, set_status

B_KEY = "workspace-b-key-0123456789"


@pytest.fixture
def world(engine):
    """u00..u19 scored 0, 5, …, 95 by an active prediction."""
    ws = default_id(engine)
    ids = add_users(engine, ws, {f"u{i:02d}": {"n": i} for i in range(20)})
    pid, _ = add_prediction(engine, ws, "purchase-14d")
    set_scores(engine, ws, pid, {ids[f"u{i:02d}"]: i * 5.0 for i in range(20)})
    return {"ws": ws, "ids": ids, "pid": pid, "name_of": {v: k for k, v in ids.items()}}


def rescore(engine, world, scores_by_index: dict[int, float]) -> None:
    set_scores(engine, world["ws"], world["pid"], {world["ids"][f"u{i:02d}"]: s for i, s in scores_by_index.items()})


def above(world, low):
    return {"name": f"score >= {low}", "definition": {"filter": "event_likelihood_score",
                                                      "prediction": world["pid"], "gte": low}}


def create(client, body, key=None):
    return client.post("/v1/segments", json=body, headers=bearer(key) if key else bearer())


def all_pages(client, segment_id, limit=3, **params) -> tuple[list[str], set[int]]:
    """Follow next_cursor to the end; return the members and the versions seen."""
    found, versions, cursor = [], set(), None
    while True:
        query = {"limit": limit, **params, **({"cursor": cursor} if cursor else {})}
        page = client.get(f"/v1/segments/{segment_id}/members", query_string=query, headers=bearer()).json
        found += [m["user_id"] for m in page["members"]]
        versions.add(page["version"])
        cursor = page["next_cursor"]
        if cursor is None:
            return found, versions


def names(start, stop):
    return [f"u{i:02d}" for i in range(start, stop)]


def test_create_list_show_and_delete(client, world, engine):
    response = create(client, above(world, 50))
    assert response.status_code == 201, response.json
    segment = response.json
    assert (segment["version"], segment["size"], segment["host_audience_id"]) == (1, 10, None)
    assert segment["definition"] == above(world, 50)["definition"] and segment["created_at"]
    assert [s["id"] for s in client.get("/v1/segments", headers=bearer()).json["segments"]] == [segment["id"]]
    shown = client.get(f"/v1/segments/{segment['id']}", headers=bearer()).json
    assert shown["versions"][0] | {"created_at": None} == {"version": 1, "size": 10, "added": 10, "removed": 0,
                                                          "created_at": None}
    assert client.delete(f"/v1/segments/{segment['id']}", headers=bearer()).status_code == 204
    assert client.get(f"/v1/segments/{segment['id']}", headers=bearer()).status_code == 404
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(segment_members)).scalar() == 0


def test_pages_follow_the_cursor_in_user_order(client, world):
    segment = create(client, above(world, 50)).json
    found, versions = all_pages(client, segment["id"], limit=3)
    assert found == names(10, 20) and versions == {1}
    page = client.get(f"/v1/segments/{segment['id']}/members", headers=bearer()).json
    assert len(page["members"]) == 10 and page["next_cursor"] is None


def test_paging_stays_on_its_snapshot_while_refreshes_write_new_ones(client, world, engine):
    segment = create(client, above(world, 50)).json
    first = client.get(f"/v1/segments/{segment['id']}/members", query_string={"limit": 4}, headers=bearer()).json
    # Members already paged (u10) and not yet paged (u18) leave; u00 and u05 join.
    rescore(engine, world, {i: (i * 5.0 if i not in (10, 18) else 1.0) for i in range(20)} | {0: 99.0, 5: 99.0})
    refreshed = client.post(f"/v1/segments/{segment['id']}/refresh", headers=bearer()).json
    assert (refreshed["version"], refreshed["added"], refreshed["removed"]) == (2, 2, 2)
    found = [m["user_id"] for m in first["members"]]
    cursor = first["next_cursor"]
    while cursor:
        page = client.get(f"/v1/segments/{segment['id']}/members", query_string={"cursor": cursor, "limit": 4},
                          headers=bearer()).json
        assert page["version"] == 1
        found += [m["user_id"] for m in page["members"]]
        cursor = page["next_cursor"]
    assert found == names(10, 20)                                        # snapshot 1, each member once
    now, _ = all_pages(client, segment["id"])
    assert sorted(now) == sorted(["u00", "u05"] + [n for n in names(10, 20) if n not in ("u10", "u18")])


def test_paging_is_exact_while_a_refresher_runs_concurrently(client, world, engine):
    segment = create(client, above(world, 50)).json
    stop = threading.Event()
    errors = []

    def refresher():
        flip = 0
        try:
            while not stop.is_set():
                flip = 1 - flip
                definition = above(world, 30 if flip else 70)["definition"]
                with transaction(engine) as conn:
                    segments.refresh_segment(conn, world["ws"], segment["id"], NOW, node=definition)
        except Exception as error:  # surfaced below
            errors.append(error)
    thread = threading.Thread(target=refresher)
    thread.start()
    def version() -> int:
        with engine.connect() as conn:
            return segments.get_segment(conn, world["ws"], segment["id"]).version

    try:
        # Page on until the refresher has really written snapshots meanwhile (a bounded wait).
        rounds = 0
        while rounds < 6 or version() <= 3:
            found, versions = all_pages(client, segment["id"], limit=2)
            assert len(versions) == 1
            assert len(found) == len(set(found))
            assert set(found) in ({*names(6, 20)}, {*names(14, 20)}, {*names(10, 20)})
            rounds += 1
            assert rounds < 1000 and not errors
    finally:
        stop.set()
        thread.join()
    assert not errors


def test_streams_as_ndjson_and_csv(client, world, engine, monkeypatch):
    add_users(engine, world["ws"], {'odd,"id"': {}})
    segment = create(client, {"name": "all", "definition": {"filter": "reachable", "channel": "in_app"}}).json
    monkeypatch.setattr(exports, "BATCH", 4)  # several chunks: the response is produced batch by batch
    url = f"/v1/segments/{segment['id']}/members"
    for response in (client.get(url, query_string={"format": "ndjson"}, headers=bearer()),
                     client.get(url, headers={**bearer(), "Accept": "application/x-ndjson"})):
        assert response.status_code == 200 and response.mimetype == "application/x-ndjson"
        assert response.is_streamed and response.headers["X-Segment-Version"] == "1"
        lines = [json.loads(line) for line in response.get_data(as_text=True).splitlines()]
        assert len(lines) == 21 and lines[0] == {"user_id": "u00"} and {"user_id": 'odd,"id"'} in lines
    for response in (client.get(url, query_string={"format": "csv"}, headers=bearer()),
                     client.get(url, headers={**bearer(), "Accept": "text/csv"})):
        assert response.mimetype == "text/csv" and "attachment" in response.headers["Content-Disposition"]
        rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
        assert rows[0] == ["user_id"] and len(rows) == 22 and ['odd,"id"'] in rows
    chunks = list(client.get(url, query_string={"format": "ndjson"}, headers=bearer()).response)
    assert len(chunks) >= 6


def test_refresh_records_diffs_and_changes_since_a_version(client, world, engine):
    segment = create(client, above(world, 50)).json
    sid = segment["id"]
    rescore(engine, world, {i: i * 5.0 for i in range(20)} | {10: 0.0, 3: 80.0})    # v2: -u10 +u03
    client.post(f"/v1/segments/{sid}/refresh", headers=bearer())
    rescore(engine, world, {i: i * 5.0 for i in range(20)} | {3: 80.0, 4: 80.0, 11: 0.0})  # v3: +u10 +u04 -u11
    third = client.post(f"/v1/segments/{sid}/refresh", headers=bearer()).json
    assert (third["version"], third["added"], third["removed"], third["size"]) == (3, 2, 1, 11)
    versions = client.get(f"/v1/segments/{sid}", headers=bearer()).json["versions"]
    assert [(v["version"], v["added"], v["removed"], v["size"]) for v in versions] == [
        (3, 2, 1, 11), (2, 1, 1, 10), (1, 10, 0, 10)]

    def changes(since, until=None):
        query = {"since": since, **({"until": until} if until else {})}
        response = client.get(f"/v1/segments/{sid}/changes", query_string=query, headers=bearer())
        assert response.status_code == 200, response.json
        lines = [json.loads(line) for line in response.get_data(as_text=True).splitlines()]
        return ({x["user_id"] for x in lines if x["change"] == "added"},
                {x["user_id"] for x in lines if x["change"] == "removed"})
    # u10 left in v2 and came back in v3: no change over 1→3.
    assert changes(1) == ({"u03", "u04"}, {"u11"})
    assert changes(2) == ({"u10", "u04"}, {"u11"})
    assert changes(1, 2) == ({"u03"}, {"u10"})
    assert changes(3) == (set(), set())
    # u03 joined in v2; if it leaves in v4, over 1→4 it never was a change.
    rescore(engine, world, {i: i * 5.0 for i in range(20)} | {4: 80.0, 11: 0.0})
    client.post(f"/v1/segments/{sid}/refresh", headers=bearer())
    assert changes(1) == ({"u04"}, {"u11"})
    with engine.connect() as conn:
        diff = segments.membership_changes(conn, world["ws"], sid, 2)
        assert {world["name_of"][u] for u in conn.execute(diff.removed).scalars()} == {"u03", "u11"}
        assert diff.version == 4


def test_old_snapshots_are_pruned_and_refused(client, world, engine, monkeypatch):
    monkeypatch.setattr(segments, "RETAINED_VERSIONS", 2)
    sid = create(client, above(world, 50)).json["id"]
    for low in (60, 70, 80):
        with transaction(engine) as conn:
            segments.refresh_segment(conn, world["ws"], sid, NOW, node=above(world, low)["definition"])
    shown = client.get(f"/v1/segments/{sid}", headers=bearer()).json
    assert (shown["version"], shown["oldest_version"]) == (4, 3)
    gone = client.get(f"/v1/segments/{sid}/members", query_string={"version": 1}, headers=bearer())
    assert gone.status_code == 410 and gone.json["error"]["code"] == "segment_version_expired"
    assert client.get(f"/v1/segments/{sid}/changes", query_string={"since": 2}, headers=bearer()).status_code == 410
    assert all_pages(client, sid, version=3)[0] == names(14, 20)
    with engine.connect() as conn:  # stretches that ended by version 3 are deleted
        assert conn.execute(select(func.count()).select_from(segment_members)).scalar() == 6
    assert client.get(f"/v1/segments/{sid}/members", query_string={"version": 5}, headers=bearer()).status_code == 404


def test_bad_member_queries_are_400(client, world):
    sid = create(client, above(world, 50)).json["id"]
    url = f"/v1/segments/{sid}/members"
    for query in ({"cursor": "!!!"}, {"cursor": "bm9wZQ"}, {"format": "xml"}, {"limit": 0}, {"limit": "ten"},
                  {"limit": 10_001}):
        response = client.get(url, query_string=query, headers=bearer())
        assert response.status_code == 400, query
    assert client.get(f"/v1/segments/{sid}/changes", headers=bearer()).status_code == 400


def test_another_workspace_sees_nothing(client, world, engine):
    sid = create(client, above(world, 50)).json["id"]
    acme = workspaces.ensure(engine, "acme")
    workspaces.add_api_key(engine, acme, B_KEY)
    b = bearer(B_KEY)
    assert client.get("/v1/segments", headers=b).json == {"segments": []}
    for method, path in [("GET", ""), ("GET", "/members"), ("GET", "/changes?since=1"), ("POST", "/refresh"),
                         ("DELETE", "")]:
        response = client.open(f"/v1/segments/{sid}{path}", method=method, headers=b)
        assert response.status_code == 404, (method, path)
    assert create(client, above(world, 50), key=B_KEY).status_code == 400  # A's prediction is unknown to B
    assert client.get(f"/v1/segments/{sid}", headers=bearer()).status_code == 200


@pytest.mark.parametrize("status, http", [("demo", 403), ("preview", 403), ("archived", 409)])
def test_untargetable_predictions_are_refused(client, world, engine, status, http):
    other, _ = add_prediction(engine, world["ws"], "other", status=status)
    response = create(client, {"name": "x", "definition": {"not": {"filter": "event_likelihood_category",
                                                                    "prediction": other, "in": ["High"]}}})
    assert response.status_code == http
    assert response.json["error"]["details"]["path"] == "not.prediction"
    assert client.get("/v1/segments", headers=bearer()).json == {"segments": []}
    # A segment whose prediction is archived or demoted later cannot be refreshed either.
    sid = create(client, above(world, 50)).json["id"]
    set_status(engine, world["pid"], status)
    refused = client.post(f"/v1/segments/{sid}/refresh", headers=bearer())
    assert refused.status_code == http
    assert refused.json["error"]["code"] == ("prediction_archived" if status == "archived"
                                             else "prediction_not_targetable")


def test_erasure_removes_segment_membership(client, world, engine):
    sid = create(client, above(world, 50)).json["id"]
    assert post_signed(client, "/webhooks/users/delete", {"user_ids": ["u15"]}).status_code == 200
    found, _ = all_pages(client, sid, limit=50)
    assert "u15" not in found and len(found) == 9


def test_an_empty_segment(client, world):
    segment = create(client, {"name": "none", "definition": {"filter": "performed", "event": "never"}}).json
    assert segment["size"] == 0
    page = client.get(f"/v1/segments/{segment['id']}/members", headers=bearer()).json
    assert page["members"] == [] and page["next_cursor"] is None
    assert client.get(f"/v1/segments/{segment['id']}/members?format=csv", headers=bearer()).get_data() == b"user_id\r\n"


@pytest.mark.postgres
def test_a_large_write_refreshes_the_planner_statistics(engine, monkeypatch):
    """Statistics from when the table was empty make PostgreSQL plan each page of a big snapshot as a
    scan and sort of every later member (the benchmark's export fell to a quarter); a large
    membership write therefore analyzes the table at once instead of waiting for autoanalyze."""
    if engine.dialect.name != "postgresql":
        pytest.skip("a PostgreSQL planner concern")
    from sqlalchemy import text
    ws = default_id(engine)
    ids = add_users(engine, ws, {f"m{i:05d}": {} for i in range(3000)})
    pid, _ = add_prediction(engine, ws, "p")
    set_scores(engine, ws, pid, {uid: 50.0 for uid in ids.values()})
    reltuples = text("SELECT reltuples FROM pg_class WHERE relname = 'segment_members'")
    with engine.connect() as conn:
        conn.execute(text("ALTER TABLE segment_members SET (autovacuum_enabled = false)"))  # no race with it
        conn.execute(text("ANALYZE segment_members"))  # the empty table's statistics, as after `db upgrade`
        conn.commit()
    try:
        monkeypatch.setattr(segments, "ANALYZE_AFTER_ROWS", 1000)
        definition = {"filter": "event_likelihood_score", "prediction": pid, "gte": 0}
        with transaction(engine) as conn:
            small = segments.create_segment(conn, ws, "small", {**definition, "gte": 60}, NOW)  # 0 rows: no analyze
        with engine.connect() as conn:
            assert small.size == 0 and conn.execute(reltuples).scalar() == 0
        with transaction(engine) as conn:
            segments.create_segment(conn, ws, "all", definition, NOW)
        with engine.connect() as conn:
            assert conn.execute(reltuples).scalar() == 3000
    finally:
        with engine.connect() as conn:
            conn.execute(text("ALTER TABLE segment_members RESET (autovacuum_enabled)"))
            conn.commit()


def test_the_scheduled_refresh_job_refreshes_every_segment_of_the_workspace(client, world, engine):
    """The `refresh_segments` job kind the scheduler runs, looked up through its registry."""
    from plugin.jobs import registry
    registry.load_job_modules()
    segment_id = create(client, above(world, 50)).json["id"]
    rescore(engine, world, {i: i * 5.0 for i in range(20)} | {0: 99.0, 19: 1.0})  # u00 enters, u19 leaves
    counts = registry.get("refresh_segments")(engine, workspace_id=world["ws"])
    assert (counts["segments"], counts["added"], counts["removed"]) == (1, 1, 1)
    members, versions = all_pages(client, segment_id)
    assert sorted(members) == ["u00"] + names(10, 19) and versions == {2}
