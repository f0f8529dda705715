"""Per-user reasons: SHAP contributions in plain feature names."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from plugin.predictions import features, models
from plugin.predictions.reader import read_chunks
from plugin.store.tables import scores, users
from tests.helpers import bearer
from tests.plugin.predictions_fixtures import AS_OF, write


def scored_users(trained, prediction_id):
    with trained.engine.connect() as conn:
        return conn.execute(select(users.c.external_id, users.c.id, scores.c.score, scores.c.category)
                            .join(scores, scores.c.user_id == users.c.id)
                            .where(scores.c.prediction_id == prediction_id).order_by(scores.c.score)).all()


def test_reasons_name_what_raised_and_lowered_a_users_score(trained):
    prediction = trained.prediction()
    ranked = scored_users(trained, prediction.id)
    top = ranked[-1]
    response = trained.client.get(f"/v1/predictions/{prediction.id}/users/{top.external_id}", headers=bearer())
    assert response.status_code == 200, response.json
    body = response.json
    assert body["user_id"] == top.external_id and body["score"] == top.score and body["category"] == top.category
    assert body["model"]["version"] == 1 and body["as_of"] == AS_OF
    labels = {c["label"] for c in features.columns(_spec(trained, prediction))}
    assert body["raised"] and all(f["impact"] > 0 and f["feature"] in labels for f in body["raised"])
    assert all(f["impact"] < 0 and f["feature"] in labels for f in body["lowered"])
    assert [f["impact"] for f in body["raised"]] == sorted((f["impact"] for f in body["raised"]), reverse=True)
    assert not any(f["feature"].startswith(("events:", "attribute:")) for f in body["raised"] + body["lowered"])


def test_contributions_add_up_to_the_users_model_output(trained):
    """The factors are the user's own: bias + all contributions = the model's margin for them."""
    prediction = trained.prediction()
    user = scored_users(trained, prediction.id)[0]
    with trained.engine.connect() as conn:
        model = models.current(conn, prediction)
    chunk = next(read_chunks(trained.engine, prediction, model.spec, AS_OF, AS_OF, only_user_id=user.id))
    matrix = features.compute(chunk, model.spec, AS_OF).matrix
    contributions = model.booster.predict(matrix, pred_contrib=True)[0]
    assert contributions.sum() == pytest.approx(model.margins(matrix)[0], abs=1e-6)
    assert model.scores(matrix)[0] == user.score  # rebuilt as of the run: the stored score


def test_unknown_and_unscored_users_are_404(trained):
    prediction = trained.prediction()
    missing = trained.client.get(f"/v1/predictions/{prediction.id}/users/nobody", headers=bearer())
    assert missing.status_code == 404 and missing.json["error"]["code"] == "user_not_found"
    write(trained.engine, [], users=[{"user_id": "attributes-only", "attributes": {"country": "FR"}}])
    unscored = trained.client.get(f"/v1/predictions/{prediction.id}/users/attributes-only", headers=bearer())
    assert unscored.status_code == 404 and unscored.json["error"]["code"] == "not_scored"


def _spec(trained, prediction):
    with trained.engine.connect() as conn:
        return models.current(conn, prediction).spec
