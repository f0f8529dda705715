"""Workspace isolation, generic over the URL map: another workspace's key, session or signature
never reads or writes this workspace's data, on every endpoint, now and as endpoints are added.

A world is built in `default` with one of every resource a path id can name; workspace `b`
then calls every route with path arguments on those ids, and every list route. A route with a
path argument this file does not know fails the test by name, so a new endpoint is covered
as soon as the world fixture makes a resource for its argument (and NOT_FOUND names its code).
"""
from __future__ import annotations

import json
import re
import time
from urllib.parse import quote

import pytest
import responses
from sqlalchemy import insert, select

from plugin import demo, workspaces
from plugin.audiences.compiler import parse_definition
from plugin.audiences.segments import create_segment
from plugin.predictions import definitions, scoring, training
from plugin.store import transaction
from plugin.store.tables import job_runs, metadata, scores, users
from plugin.store.types import utcnow
from tests.helpers import API_KEY, OTHER_SECRET, WEBHOOK_SECRET, bearer, post_signed
from tests.plugin import campaign_data as cd
from tests.plugin.pages_support import BASE, csrf_token
from tests.plugin.predictions_fixtures import AS_OF, END, new_prediction

B_KEY = "workspace-b-isolation-key-0123456789"
MARK = "zq7x"  # in every name of default's resources, so a leak of one is easy to spot
NAMES = {"prediction": f"Default prediction {MARK}", "segment": f"Default segment {MARK}",
         "campaign": f"Default campaign {MARK}", "audience": f"default-audience-{MARK}",
         "email": f"default-sender-{MARK}@shop.example", "job": f"default-job-{MARK}"}

# The error code of another workspace's resource, by the path argument naming it: b's answer
# must be the not-found of one of the route's own arguments (not, say, of a user it lacks).
NOT_FOUND = {"prediction_id": "prediction_not_found", "segment_id": "segment_not_found",
             "campaign_id": "campaign_not_found", "destination_id": "destination_not_found",
             "run_id": "run_not_found", "user_id": "user_not_found", "workspace": "workspace_not_found"}
# Bodies that pass validation, so b's request reaches the lookup that must refuse it (an
# empty body would be a 400 before the workspace is ever consulted). Default: {}.
BODIES = {
    "campaigns.change": lambda w: {"name": "Taken over"},
    "campaigns.render": lambda w: {"user_id": w["user_id"]},
    "predictions.change": lambda w: {"name": "Taken over"},
    "predictions.train": lambda w: {"as_of": AS_OF},
    "predictions.score": lambda w: {"as_of": AS_OF},
    "segment_destinations.attach": lambda w: {"connector": "meta_custom_audience", "audience_id": "b-audience"},
    "pages.preview_range": lambda w: {"min": 50, "max": 100},
    "pages.create_segment": lambda w: {"min": 50, "max": 100},
    "pages.create_campaign": lambda w: {"min": 0, "max": 100},
}
QUERIES = {"segments.changes": "since=1"}  # required query arguments, checked before the lookup
# Routes whose credential is a signed link, not a workspace's key or session: the token names its
# workspace and user itself, and forged or altered tokens are refused (tests/plugin/test_unsubscribe.py).
SIGNED_LINKS = {"unsubscribe.confirm", "unsubscribe.one_click"}
ARGUMENT = re.compile(r"<(?:[^<>:]+:)?([^<>]+)>")


@pytest.fixture
def world(engine, client):
    """In `default`: demo users and events, a trained and scored active prediction, a segment
    with a destination, a campaign with a run, a job run and distinctive settings. And `b`."""
    ws = cd.workspace_id(engine)
    cd.set_settings(engine, ws, unsubscribe_url="https://shop.example/u/{user_id}", connectors={
        "sendgrid": {**cd.SENDGRID, "from_email": NAMES["email"]},
        "meta_custom_audience": {"enabled": True, "access_token": "EAAB-meta-token-123456", "max_attempts": 1}})
    demo.load(engine, ws, 600, seed=3, end_ts=END)
    prediction = new_prediction(engine, ws, name=NAMES["prediction"])
    training.train(engine, prediction, AS_OF, training.TrainingOptions(min_positives=10, min_negatives=10))
    with engine.connect() as conn:
        prediction = definitions.get(conn, ws, prediction.id)
    scoring.score(engine, prediction, AS_OF)
    with engine.connect() as conn:
        user_id = conn.execute(select(users.c.external_id).join(scores, scores.c.user_id == users.c.id)
                               .where(scores.c.prediction_id == prediction.id)
                               .order_by(scores.c.score.desc()).limit(1)).scalar_one()
    node = parse_definition({"filter": "event_likelihood_score", "prediction": prediction.id, "gte": 50})
    with transaction(engine) as conn:
        segment = create_segment(conn, ws, NAMES["segment"], node, int(time.time()))
        conn.execute(insert(job_runs).values(workspace_id=ws, job_id=NAMES["job"], kind="work", run_key="k",
                                             holder="h", outcome="ok", started_at=utcnow()))
    destination = client.post(f"/v1/segments/{segment.id}/destinations", headers=bearer(),
                              json={"connector": "meta_custom_audience", "audience_id": NAMES["audience"]})
    assert destination.status_code == 201, destination.json
    tiers = [cd.email_tier("Likely", ["Medium", "High"]), cd.email_tier("Rest", ["Low"], 10)]
    campaign = client.post("/v1/campaigns", headers=bearer(),
                           json=cd.campaign_body(prediction.id, tiers=tiers, name=NAMES["campaign"]))
    assert campaign.status_code == 201, campaign.json
    run = client.post(f"/v1/campaigns/{campaign.json['id']}/runs", headers=bearer())
    assert run.status_code == 201, run.json
    b = workspaces.ensure(engine, "b")
    workspaces.add_api_key(engine, b, B_KEY)
    workspaces.add_webhook_secret(engine, b, OTHER_SECRET)
    return {"ws": ws, "b": b, "user_id": user_id,
            "ids": {"prediction_id": prediction.id, "segment_id": segment.id,
                    "destination_id": destination.json["id"], "campaign_id": campaign.json["id"],
                    "run_id": run.json["id"], "user_id": user_id, "workspace": "default"}}


def snapshot(engine) -> dict[str, list[str]]:
    """Every row of every table: nothing anywhere may change when b is refused."""
    with engine.connect() as conn:
        return {t.name: sorted(repr(tuple(r)) for r in conn.execute(select(t))) for t in metadata.sorted_tables}


def changed_tables(before: dict, after: dict) -> list[str]:
    return [name for name in before if before[name] != after[name]]


def signed_in(app, key: str):
    """A test client with a page session of the key's workspace, and that session's CSRF token."""
    pages = app.test_client()
    form = pages.get("/login", base_url=BASE).get_data(as_text=True)
    login_token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)  # the form's login CSRF token
    assert pages.post("/login", data={"api_key": key, "csrf_token": login_token}, base_url=BASE).status_code == 200
    listing = pages.get("/predictions", base_url=BASE)
    assert listing.status_code == 200
    return pages, csrf_token(listing.get_data(as_text=True))


def routes_with_arguments(app):
    rules = [r for r in app.url_map.iter_rules()
             if r.arguments and r.endpoint != "static" and not r.rule.startswith("/webhooks/")
             and r.endpoint not in SIGNED_LINKS]
    assert any(r.rule.startswith("/v1/") for r in rules) and any(not r.rule.startswith("/v1/") for r in rules)
    return sorted(rules, key=lambda r: r.rule)


def path_for(rule, ids: dict) -> tuple[str, list[str]]:
    """The rule's path on default's ids, and its argument names."""
    names = ARGUMENT.findall(rule.rule)
    unknown = [n for n in names if n not in ids or n not in NOT_FOUND]
    if unknown:
        pytest.fail(f"{rule.rule} ({rule.endpoint}): path argument(s) {unknown} unknown to the isolation test; "
                    "make one in the world fixture's ids and name its code in NOT_FOUND "
                    "(tests/plugin/test_workspace_isolation.py)")
    path = ARGUMENT.sub(lambda m: quote(str(ids[m.group(1)]), safe=""), rule.rule)
    query = QUERIES.get(rule.endpoint)
    return (f"{path}?{query}" if query else path), names


def methods(rule) -> list[str]:
    # DELETE last, so a broken delete cannot hide what the other methods would have done.
    return sorted(rule.methods - {"HEAD", "OPTIONS"}, key=lambda m: (m == "DELETE", m))


def leaks(text: str) -> list[str]:
    return [name for name in NAMES.values() if name in text]


def call(client, method: str, path: str, body, headers: dict):
    if method == "GET":
        return client.open(path, method=method, headers=headers, base_url=BASE)
    return client.open(path, method=method, headers=headers, base_url=BASE, json=body)


def test_default_ids_resolve_for_default(app, world):
    """The control: every GET route on these ids answers default itself, so b's 404s below
    come from the workspace scoping, not from ids that name nothing."""
    pages, token = signed_in(app, API_KEY)
    for rule in routes_with_arguments(app):
        if "GET" in rule.methods:
            path, _ = path_for(rule, world["ids"])
            response = pages.get(path, headers={**bearer(), "X-CSRF-Token": token}, base_url=BASE)
            assert response.status_code == 200, (rule.rule, path, response.get_data(as_text=True)[:300])


def test_another_workspace_reaches_nothing_by_id(app, engine, world):
    pages, token = signed_in(app, B_KEY)
    headers = {**bearer(B_KEY), "X-CSRF-Token": token}
    before = snapshot(engine)
    seen = []
    # No request may reach a provider: whatever would be sent fails fast instead.
    with responses.RequestsMock(assert_all_requests_are_fired=False):
        for rule in routes_with_arguments(app):
            path, names = path_for(rule, world["ids"])
            for method in methods(rule):
                body = BODIES.get(rule.endpoint, lambda w: {})(world)
                response = call(pages, method, path, body, headers)
                text = response.get_data(as_text=True)
                where = (method, rule.rule, response.status_code, text[:300])
                assert response.status_code == 404, where
                if response.is_json:
                    assert set(response.json) == {"error"}, where
                    assert response.json["error"]["code"] in {NOT_FOUND[n] for n in names}, where
                assert not leaks(text), where
                seen.append((method, rule.rule))
    assert changed_tables(before, snapshot(engine)) == []
    assert len(seen) >= 25  # every /v1 and page route with an id was called


def _ids_in(value, found: set) -> set:
    if isinstance(value, dict):
        for key, item in value.items():
            if (key == "id" or key.endswith("_id")) and isinstance(item, (int, str)):
                found.add(str(item))
            _ids_in(item, found)
    elif isinstance(value, list):
        for item in value:
            _ids_in(item, found)
    return found


def client_list(client, path: str, headers: dict, key: str | None = None) -> list:
    body = client.get(path, headers=headers, base_url=BASE).json
    return body[key or path.split("/")[2].split("?")[0]]


def test_another_workspaces_lists_show_nothing_of_default(app, engine, world):
    pages, token = signed_in(app, B_KEY)
    headers = {**bearer(B_KEY), "X-CSRF-Token": token}
    rules = [r for r in app.url_map.iter_rules() if "GET" in r.methods and not r.arguments]
    assert any(r.rule == "/v1/campaigns" for r in rules)
    theirs = {str(v) for v in world["ids"].values()}
    for rule in sorted(rules, key=lambda r: r.rule):
        response = pages.get(rule.rule, headers=headers, base_url=BASE)
        text = response.get_data(as_text=True)
        where = (rule.rule, response.status_code, text[:300])
        assert response.status_code == 200, where
        assert not leaks(text) and world["user_id"] not in text, where
        if rule.rule.startswith("/v1/") and response.is_json:
            # b owns no resource at all: any resource id in its lists is someone else's.
            assert not _ids_in(response.json, set()) & theirs, where
    assert client_list(pages, "/v1/predictions", headers) == []
    assert client_list(pages, "/v1/segments", headers) == []
    assert client_list(pages, "/v1/campaigns?include_archived=true", headers) == []
    assert client_list(pages, "/v1/jobs", headers, "runs") == []
    assert pages.get("/v1/settings", headers=headers, base_url=BASE).json["workspace"]["slug"] == "b"


def test_another_workspaces_writes_without_an_id_leave_default_alone(client, engine, world):
    """Default's ids in a body name nothing for b; b's settings are b's."""
    pid = world["ids"]["prediction_id"]
    score = {"filter": "event_likelihood_score", "prediction": pid, "gte": 0}
    before = snapshot(engine)
    for path, body in [("/v1/campaigns", cd.campaign_body(pid, name="Stolen")),
                       ("/v1/segments", {"name": "Stolen", "definition": score}),
                       ("/v1/audiences/preview", {"definition": score, "sample": 5})]:
        response = client.post(path, json=body, headers=bearer(B_KEY))
        text = response.get_data(as_text=True)
        assert response.status_code == 400, (path, response.status_code, text)
        assert response.json["error"]["code"] == "unknown_prediction", (path, text)
        assert not leaks(text) and world["user_id"] not in text, (path, text)
    assert changed_tables(before, snapshot(engine)) == []
    changed = client.patch("/v1/settings", json={"unsubscribe_url": "https://b.example/u/{user_id}"},
                           headers=bearer(B_KEY))
    assert changed.status_code == 200, changed.json
    assert changed.json["workspace"]["slug"] == "b" and not leaks(changed.get_data(as_text=True))
    after = snapshot(engine)
    assert changed_tables(before, after) == ["workspaces"]
    default_row = [r for r in before["workspaces"] if r.startswith(f"({world['ws']}, 'default'")]
    assert default_row and all(r in after["workspaces"] for r in default_row)


WEBHOOK_BODIES = {
    "webhooks.events": lambda user: {"events": [{"user_id": user, "event": "purchase", "timestamp": END}]},
    "webhooks.users": lambda user: {"users": [{"user_id": user, "email": "intruder@b.example"}]},
    "webhooks.delete_users": lambda user: {"user_ids": [user]},
    "webhooks.host_audiences": lambda user: {"audience_id": "b-aud", "name": "Stolen", "definition": {
        "filter": "event_likelihood_score", "prediction": 1, "gte": 0}},
    "webhooks.segment_messages": lambda user: {"type": "track", "userId": user, "event": "purchase",
                                               "timestamp": END, "messageId": "m-stolen"},
    "webhooks.clevertap_records": lambda user: {"d": [{"type": "event", "identity": user, "ts": END,
                                                       "evtName": "purchase"}]},
    "webhooks.sendgrid": lambda user: [{"event": "unsubscribe", "timestamp": END, "email": "x@example.com",
                                        "likely_recipient_id": user}],
}


def test_another_workspaces_signature_writes_nothing_of_default(app, client, engine, world):
    before = snapshot(engine)
    rules = [r for r in app.url_map.iter_rules() if r.endpoint.startswith("webhooks.")]
    assert {r.rule for r in rules} >= {"/webhooks/events", "/webhooks/<workspace>/events"}
    for rule in sorted(rules, key=lambda r: r.rule):
        if rule.endpoint not in WEBHOOK_BODIES:
            pytest.fail(f"{rule.rule} ({rule.endpoint}): add a payload to WEBHOOK_BODIES")
        path = rule.rule.replace("<workspace>", "default")  # the plain paths mean default too
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            response = post_signed(client, path, WEBHOOK_BODIES[rule.endpoint](world["user_id"]),
                                   secret=OTHER_SECRET)
            assert response.status_code == 401, (method, path, response.status_code, response.json)
    # A page sign-in link for default signed with b's secret does not open default's pages.
    from tests.plugin.pages_support import link
    assert client.get(link("/predictions", "default", OTHER_SECRET), base_url=BASE).status_code == 401
    assert changed_tables(before, snapshot(engine)) == []


def _default_rows(engine, world) -> dict[str, list[str]]:
    """Default's rows of every workspace-scoped table (b's own writes are allowed)."""
    with engine.connect() as conn:
        return {t.name: sorted(repr(tuple(r)) for r in conn.execute(select(t).where(t.c.workspace_id == world["ws"])))
                for t in metadata.sorted_tables if "workspace_id" in t.c}


def test_erasure_in_another_workspace_never_erases_default_users(client, engine, world):
    before, everything = _default_rows(engine, world), snapshot(engine)
    user = world["user_id"]
    for path, payload in [("/webhooks/b/users", {"users": [{"user_id": user, "email": "b@b.example"}]}),
                          ("/webhooks/b/events", WEBHOOK_BODIES["webhooks.events"](user)),
                          ("/webhooks/b/users/delete", {"user_ids": [user]}),
                          ("/webhooks/b/audiences", {"audience_id": "b-aud", "name": "Stolen", "definition": {
                              "filter": "event_likelihood_score", "prediction": world["ids"]["prediction_id"],
                              "gte": 0}})]:
        response = post_signed(client, path, payload, secret=OTHER_SECRET)
        expected = 400 if path.endswith("/audiences") else 200  # default's prediction is unknown to b
        assert response.status_code == expected, (path, response.json)
        assert not leaks(response.get_data(as_text=True)) and "Stolen" not in json.dumps(response.json)
    assert _default_rows(engine, world) == before
    # Tables without a workspace column (segment members, versions, pushed members) too.
    after = snapshot(engine)
    assert [t for t in changed_tables(everything, after) if "workspace_id" not in metadata.tables[t].c] == []
    with engine.connect() as conn:
        owners = conn.execute(select(users.c.workspace_id).where(users.c.external_id == user)).scalars().all()
    assert owners == [world["ws"]]  # b's user of the same id was written, then erased; default's stays
    # And with default's own secret the same erasure does reach default (the control).
    assert post_signed(client, "/webhooks/users/delete", {"user_ids": [user]},
                       secret=WEBHOOK_SECRET).json["written"] == 1
    assert json.dumps(_default_rows(engine, world)) != json.dumps(before)
