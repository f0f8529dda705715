"""A new prediction is trained now, not at its first retraining date (issue 16, point 1)."""
from __future__ import annotations

from plugin.jobs import plan, registry
from plugin.predictions import jobs as prediction_jobs
from plugin.predictions import trainings
from plugin.predictions.training import TrainingOptions
from tests.helpers import bearer
from tests.plugin.pages_support import BASE, sign_in
from tests.plugin.predictions_fixtures import AS_OF

NEW = {"name": "Buyers, new", "goal_event": "purchase", "window_days": 14}
SMALL = TrainingOptions(min_positives=20, min_negatives=20)


def _create(trained, body=NEW):
    created = trained.client.post("/v1/predictions", json=body, headers=bearer())
    assert created.status_code == 201, created.json
    return created.json


def test_creation_queues_the_first_training_which_builds_then_scores(trained):
    created = _create(trained)
    assert created["training"]["state"] == "building" and created["model"] is None
    # The daily rescore, due before the first model exists, waits instead of failing.
    assert prediction_jobs.rescore(trained.engine, workspace_id=1, prediction_id=created["id"]) == {
        "users_scored": 0, "waiting_for_first_model": 1}

    counts = prediction_jobs.run_queued(trained.engine, SMALL, now_ts=AS_OF)
    assert counts == {"ready": 1, "refused": 0, "failed": 0}
    shown = trained.client.get(f"/v1/predictions/{created['id']}", headers=bearer()).json
    assert shown["training"]["state"] == "ready" and shown["training"]["model_id"] == shown["model"]["id"]
    # Rescoring follows the first model: the scores are there at once.
    assert shown["latest_run"]["users_scored"] > 0 and shown["last_scored_at"] is not None
    # Nothing is left to claim: a second sweep trains nothing again.
    assert prediction_jobs.run_queued(trained.engine, SMALL, now_ts=AS_OF) == {"ready": 0, "refused": 0, "failed": 0}


def test_too_little_data_is_a_refusal_with_its_counts(trained):
    created = _create(trained)
    strict = TrainingOptions(min_positives=10 ** 6, min_negatives=20)
    assert prediction_jobs.run_queued(trained.engine, strict, now_ts=AS_OF)["refused"] == 1
    training = trained.client.get(f"/v1/predictions/{created['id']}", headers=bearer()).json["training"]
    assert training["state"] == "refused"
    details = training["details"]
    assert details["code"] == "not_enough_data" and details["min_positives"] == 10 ** 6
    assert details["positives"] > 0 and details["eligible_users"] == details["positives"] + details["negatives"]
    client = trained.app.test_client()
    sign_in(client)
    page = client.get(f"/predictions/{created['id']}", base_url=BASE).get_data(as_text=True)
    assert 'id="training" data-state="refused"' in page and "Not enough data to train" in page
    assert f"{details['positives']:,}" in page and "1,000,000" in page


def test_a_lapsed_claim_is_taken_over(trained):
    created = _create(trained)
    claimed = trainings.claim(trained.engine, AS_OF)
    assert [c[2] for c in claimed] == [created["id"]]
    assert trainings.claim(trained.engine, AS_OF) == []                       # held
    assert len(trainings.claim(trained.engine, AS_OF + trainings.CLAIM_SECONDS + 1)) == 1  # crashed trainer


def test_demo_predictions_are_not_queued(trained):
    created = _create(trained, {**NEW, "status": "demo"})
    assert created["training"] is None


def test_the_scheduler_plans_the_training_sweep(trained):
    with trained.engine.connect() as conn:
        specs, _ = plan.desired_jobs(conn, plan.Schedule())
    sweep = [s for s in specs if s.id == "train_queued"]
    assert sweep and sweep[0].kind == "train_queued" and registry.is_registered("train_queued")
    assert sweep[0].trigger["seconds"] == prediction_jobs.TRAINING_SWEEP_SECONDS


def test_the_page_shows_building_then_ready(trained):
    created = _create(trained)
    client = trained.app.test_client()
    sign_in(client)
    page = client.get(f"/predictions/{created['id']}", base_url=BASE).get_data(as_text=True)
    assert 'id="training" data-state="building"' in page and "Building the first model" in page
    prediction_jobs.run_queued(trained.engine, SMALL, now_ts=AS_OF)
    page = client.get(f"/predictions/{created['id']}", base_url=BASE).get_data(as_text=True)
    assert 'id="training"' not in page and 'id="histogram"' in page
