"""Campaign results: delivery counts per tier and reason; after the window, treatment vs control."""
from __future__ import annotations

import math

import pytest
import responses

from plugin.campaigns import definitions, results, runs, schema
from plugin.campaigns.delivery import deliver_outbox
from plugin.ingest.writer import write_events
from plugin.store import transaction
from tests.helpers import bearer
from tests.plugin import campaign_data as cd
from tests.plugin.campaign_data import fresh_connectors  # noqa: F401  (autouse)

NOW = 1_790_000_000
DAY = 86_400
SEND = "https://api.sendgrid.com/v3/mail/send"


def test_wilson_and_newcombe_match_newcombes_published_example():
    # Newcombe (1998), Statistics in Medicine 17:873, example (a): 56/70 vs 48/80, method 10.
    low, high = results.wilson(56, 70)
    assert (round(low, 4), round(high, 4)) == (0.6918, 0.877)
    d, lo, hi = results.newcombe(56, 70, 48, 80)
    assert (round(d, 4), round(lo, 4), round(hi, 4)) == (0.2, 0.0524, 0.3339)
    assert results.newcombe(1, 0, 1, 5) is None
    zero = results.newcombe(0, 10, 0, 10)
    assert zero[0] == 0 and zero[1] < 0 < zero[2]


@pytest.fixture
def measured(engine):
    """200 users in one High tier, half held out; planned and delivered at NOW."""
    ws = cd.workspace_id(engine)
    cd.set_settings(engine, ws, connectors={"sendgrid": cd.SENDGRID},
                    unsubscribe_url="https://shop.example/u/{user_id}")
    pid = cd.add_prediction(engine, ws, window_days=7)
    people = [(f"u{i}", {"email": f"u{i}@example.com"} if i % 20 else {}) for i in range(200)]
    ids = cd.add_users(engine, ws, people)
    cd.add_scores(engine, ws, pid, {uid: 80.0 for uid in ids.values()})
    tiers = [cd.email_tier("High", ["High"], control_share=0.5)]
    campaign, _ = definitions.create(engine, ws, schema.CampaignInput().load(cd.campaign_body(pid, tiers=tiers)))
    run, _ = runs.start_run(engine, ws, campaign["id"], now_ts=NOW)
    with responses.RequestsMock() as rsps:
        rsps.add(responses.POST, SEND, status=202, headers={"X-Message-Id": "m"})
        deliver_outbox(engine, "w", 1000, now_ts=NOW)
    from sqlalchemy import select

    from plugin.store.tables import outbox
    with engine.connect() as conn:
        groups = {r.user_id: ("control" if r.reason == "control" else
                              "treatment" if r.status != "skipped" else "skipped")
                  for r in conn.execute(select(outbox))}
    name_of = {v: k for k, v in ids.items()}
    return {"ws": ws, "campaign": campaign["id"], "run": run, "groups": groups, "name_of": name_of}


def convert(engine, ws, names, ts):
    with transaction(engine) as conn:
        write_events(conn, ws, [{"user_id": n, "event": "purchase", "timestamp": ts} for n in names])


def test_counts_per_tier_by_status_and_skip_reason(engine, measured):
    with engine.connect() as conn:
        report = results.campaign_results(conn, measured["ws"], measured["campaign"], now_ts=NOW + DAY)
    (tier,) = report["tiers"]
    groups = list(measured["groups"].values())
    assert tier["targeted"] == 200
    assert tier["sent"] == groups.count("treatment")
    assert tier["skipped"] == {"not_reachable": 10, "control": groups.count("control")}
    assert tier["channels"]["email"]["sent"] == tier["sent"]
    assert tier["outcomes"] is None and report["runs_measured"] == 0
    assert report["next_measurement_at"] == NOW + 7 * DAY


def test_after_the_window_treatment_and_control_conversions_and_the_uplift(engine, measured):
    by_group = {"treatment": [], "control": []}
    for user_id, group in measured["groups"].items():
        if group in by_group:
            by_group[group].append(measured["name_of"][user_id])
    treated, held = sorted(by_group["treatment"]), sorted(by_group["control"])
    convert(engine, measured["ws"], treated[: len(treated) // 2], NOW + 3 * DAY)   # half of treatment
    convert(engine, measured["ws"], held[: len(held) // 5], NOW + 6 * DAY)         # a fifth of control
    convert(engine, measured["ws"], held[len(held) // 5:], NOW - DAY)             # before the run: no
    convert(engine, measured["ws"], held[len(held) // 5:], NOW + 8 * DAY)         # after the window: no
    with engine.connect() as conn:
        early = results.campaign_results(conn, measured["ws"], measured["campaign"], now_ts=NOW + 7 * DAY - 1)
        report = results.campaign_results(conn, measured["ws"], measured["campaign"], now_ts=NOW + 7 * DAY)
    assert early["tiers"][0]["outcomes"] is None
    outcome = report["tiers"][0]["outcomes"]
    nt, nc = len(treated), len(held)
    xt, xc = nt // 2, nc // 5
    assert outcome["treatment"] == {"users": nt, "conversions": xt, "rate": round(xt / nt, 6),
                                    "expected_conversions": round(0.8 * nt, 2)}
    assert outcome["control"]["users"] == nc and outcome["control"]["conversions"] == xc
    d, low, high = results.newcombe(xt, nt, xc, nc)
    assert outcome["uplift"]["difference"] == round(d, 6) and outcome["uplift"]["ci95"] == [round(low, 6),
                                                                                            round(high, 6)]
    assert outcome["uplift"]["significant"] is (low > 0)
    assert outcome["expected_conversions"] == round(0.8 * (nt + nc), 2)
    assert outcome["actual_conversions"] == xt + xc
    assert math.isclose(outcome["uplift"]["difference"], xt / nt - xc / nc, abs_tol=1e-6)


def test_the_results_endpoint(client, engine, measured):
    answer = client.get(f"/v1/campaigns/{measured['campaign']}/results", headers=bearer())
    assert answer.status_code == 200
    assert answer.json["tiers"][0]["tier"] == "High" and answer.json["runs"] == 1
    assert answer.json["connectors"] == [] or answer.json["connectors"][0]["connector"] == "sendgrid"
