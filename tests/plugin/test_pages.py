"""The prediction pages through Flask's test client, on the trained demo store (SQLite and PostgreSQL):
sign-in, workspace scoping, CSRF, what the page shows, and the JSON calls the page makes."""
from __future__ import annotations

import re
from urllib.parse import urlencode

import pytest

from plugin import create_app, workspaces
from plugin.predictions import definitions, models, quality, scoring
from plugin.store import transaction
from tests.helpers import API_KEY, WEBHOOK_SECRET, bearer
from tests.plugin.hosting import HOST_ORIGIN
from tests.plugin.pages_support import BASE, csrf_token, score_tree, sign_in
from tests.plugin.predictions_fixtures import new_prediction

OTHER_KEY = "globex-api-key-0123456789"


@pytest.fixture
def site(trained):
    """The trained store served as a host installs it (framed by HOST_ORIGIN), and its prediction."""
    app = create_app({"database_url": trained.url, "webhook_secrets": [WEBHOOK_SECRET], "api_keys": [API_KEY],
                      "host_origins": [HOST_ORIGIN]})
    trained.app, trained.client = app, app.test_client()
    yield trained
    app.extensions["likely_engine"].dispose()


def _page(client, prediction_id: int):
    response = client.get(f"/predictions/{prediction_id}", base_url=BASE)
    return response, response.get_data(as_text=True)


def _signed_in(site, prediction_id: int, client=None) -> str:
    """Sign in to `default` and open the page; return its CSRF token."""
    client = client or site.client
    sign_in(client, f"/predictions/{prediction_id}")
    response, html = _page(client, prediction_id)
    assert response.status_code == 200
    return csrf_token(html)


def _post(client, path: str, body, token: str | None, **headers):
    if token is not None:
        headers["X-CSRF-Token"] = token
    return client.post(path, json=body, headers=headers, base_url=BASE)


def _demote(site, prediction_id: int, status: str) -> None:
    with transaction(site.engine) as conn:
        definitions.change(conn, 1, prediction_id, {"status": status}, 5)


def test_pages_require_a_session(site):
    pid = site.prediction().id
    for path in ("/predictions", f"/predictions/{pid}"):
        response = site.client.get(path, base_url=BASE)
        assert response.status_code == 302
        assert response.headers["Location"] == "/login?" + urlencode({"next": path})
    for action in ("preview", "segments", "campaigns"):
        response = _post(site.client, f"/pages/predictions/{pid}/{action}", {"min": 50, "max": 100}, "anything")
        assert response.status_code == 401 and response.json["error"]["code"] == "not_signed_in"
    # The bearer key opens /v1, not the pages.
    assert site.client.get(f"/predictions/{pid}", headers=bearer(), base_url=BASE).status_code == 302


def test_pages_carry_the_frame_headers(site):
    pid = site.prediction().id
    sign_in(site.client, f"/predictions/{pid}")
    for path in ("/predictions", f"/predictions/{pid}", "/predictions/999999"):
        response = site.client.get(path, base_url=BASE)
        assert response.headers["Content-Security-Policy"].startswith(f"frame-ancestors {HOST_ORIGIN};"), path
        assert response.headers["Cache-Control"] == "private, no-store"
        assert response.mimetype == "text/html"


def test_another_workspaces_prediction_is_not_found(site):
    globex = workspaces.ensure(site.engine, "globex")
    workspaces.add_api_key(site.engine, globex, OTHER_KEY)
    theirs = new_prediction(site.engine, workspace_id=globex.id, name="Globex buyers")
    ours = site.prediction()
    token = _signed_in(site, ours.id)
    response, html = _page(site.client, theirs.id)
    assert response.status_code == 404 and "Globex buyers" not in html
    assert "Globex buyers" not in site.client.get("/predictions", base_url=BASE).get_data(as_text=True)
    for action in ("preview", "segments", "campaigns"):
        response = _post(site.client, f"/pages/predictions/{theirs.id}/{action}", {"min": 0, "max": 100}, token)
        assert response.status_code == 404, action
        assert response.json["error"]["code"] == "prediction_not_found"
    # Signed in to globex with its API key, the default workspace's prediction is the missing one.
    other = site.app.test_client()
    form = other.get("/login", base_url=BASE).get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)  # the form's login CSRF token
    response = other.post("/login", data={"api_key": OTHER_KEY, "next": "/predictions", "csrf_token": token},
                          base_url=BASE)
    assert response.status_code == 302
    assert _page(other, ours.id)[0].status_code == 404
    listing = other.get("/predictions", base_url=BASE).get_data(as_text=True)
    assert "Globex buyers" in listing and ours.name not in listing


def test_json_calls_need_the_sessions_csrf_token_and_json(site):
    pid = site.prediction().id
    token = _signed_in(site, pid)
    path = f"/pages/predictions/{pid}/segments"
    for sent in (None, "", token[:-1] + ("A" if token[-1] != "A" else "B")):
        response = _post(site.client, path, {"min": 50, "max": 100}, sent)
        assert response.status_code == 403 and response.json["error"]["code"] == "csrf_failed"
    # A token from another session is worth nothing here.
    other = site.app.test_client()
    other_token = _signed_in(site, pid, client=other)
    assert other_token != token
    assert _post(site.client, path, {"min": 50, "max": 100}, other_token).status_code == 403
    # Form posts (what a cross-site form can send) are refused even with the token.
    response = site.client.post(path, data="min=50&max=100", base_url=BASE,
                                headers={"X-CSRF-Token": token, "Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 415
    assert site.client.get("/v1/segments", headers=bearer()).json["segments"] == []
    assert _post(site.client, path, {"min": 50, "max": 100}, token).status_code == 201


def test_the_page_shows_the_stores_distribution_and_quality(site):
    prediction = site.prediction()
    with site.engine.connect() as conn:
        run = scoring.latest_run(conn, prediction.id)
        metrics = models.summary(conn, prediction.current_model_id)["metrics"]
    _signed_in(site, prediction.id)
    response, html = _page(site.client, prediction.id)
    bars = re.findall(r'<rect class="bar" data-from="(\d+)" data-to="(\d+)" data-users="(\d+)"', html)
    assert [(int(a), int(b)) for a, b, _ in bars] == [(i, i + 5) for i in range(0, 100, 5)]
    assert [int(n) for _, _, n in bars] == [sum(run.histogram[i:i + 5]) for i in range(0, 100, 5)]
    assert sum(int(n) for _, _, n in bars) == run.users_scored
    for name, users in run.categories["users"].items():
        assert re.search(rf'<tr data-category="{name}">.*?<td class="num">{users:,}</td>', html, re.S), name
    band = metrics["quality_band"]
    assert re.search(rf'id="quality-value">{metrics["prediction_quality"]:.1f}<', html)
    assert f'id="quality-band">{band}<' in html
    meaning = {"Excellent": "very well", "Good": "clearly separates", "Fair": "better than random",
               "Poor": "close to random"}[band]
    assert meaning in re.search(r'id="quality-meaning">([^<]*)<', html).group(1)
    assert f"AUC</dt><dd>{metrics['auc']:.3f}" in html
    low, high = metrics["prediction_quality_interval"]
    assert f"95 % interval {low:.1f}–{high:.1f}" in html
    assert f"Calibration error</dt><dd>{metrics['expected_calibration_error_pp']:.2f} pp" in html
    assert f"Predicted − observed rate</dt><dd>{metrics['mean_gap_pp']:+.2f} pp" in html
    assert ('id="quality-low-confidence"' in html) == (metrics["test_positives"] < quality.LOW_CONFIDENCE_CONVERTERS)
    assert html.count('<circle class="point"') == sum(1 for row in metrics["calibration"] if row["users"])
    top = metrics["feature_importance"][0]["feature"]
    assert f'<span class="factor-name">{top}</span>' in html
    assert 'id="goal">purchase<' in html and 'id="window">14 days<' in html
    for button in ("create-segment", "create-campaign"):
        assert "disabled" not in re.search(rf'<button[^>]*id="{button}"[^>]*>', html).group(0)
    assert 'id="not-targetable"' not in html


def test_the_slider_preview_answers_what_v1_answers(site):
    pid = site.prediction().id
    token = _signed_in(site, pid)
    for low, high in ((0, 100), (60, 100), (12.5, 47.25), (50, 75)):
        page = _post(site.client, f"/pages/predictions/{pid}/preview", {"min": low, "max": high}, token)
        api = site.client.post("/v1/audiences/preview", json={"definition": score_tree(pid, low, high)},
                               headers=bearer())
        assert page.status_code == api.status_code == 200
        assert page.json == api.json
        assert page.json["targeting"] is not None and page.json["size"] > 0
    assert _post(site.client, f"/pages/predictions/{pid}/preview", {"min": 70, "max": 70}, token).status_code == 400
    assert _post(site.client, f"/pages/predictions/{pid}/preview", {"min": 0, "max": 100, "x": 1},
                 token).status_code == 400


def test_create_segment_and_campaign_from_a_range(site):
    pid = site.prediction().id
    token = _signed_in(site, pid)
    made = _post(site.client, f"/pages/predictions/{pid}/segments", {"min": 60, "max": 100, "name": "Hot"}, token)
    assert made.status_code == 201
    shown = site.client.get(f"/v1/segments/{made.json['id']}", headers=bearer()).json
    assert shown["name"] == "Hot" and shown["definition"] == score_tree(pid, 60, 100)
    preview = site.client.post("/v1/audiences/preview", json={"definition": score_tree(pid, 60, 100)},
                               headers=bearer()).json
    assert shown["size"] == preview["size"] > 0
    assert {k: v for k, v in made.json.items()} == {k: v for k, v in shown.items() if k != "versions"}

    campaign = _post(site.client, f"/pages/predictions/{pid}/campaigns", {"min": 60, "max": 100}, token)
    assert campaign.status_code == 201, campaign.json
    stored = site.client.get(f"/v1/campaigns/{campaign.json['id']}", headers=bearer()).json
    assert stored["status"] == "paused" and stored["preset"] == "playbook"
    assert stored["audience"] == score_tree(pid, 60, 100)
    # 60–100 reaches Medium [50, 75) and High [75, 100], not Low [0, 50).
    assert [t["name"] for t in stored["tiers"]] == ["High", "Medium"]
    assert stored["name"] == "purchase within 14 days · score 60–100"
    again = _post(site.client, f"/pages/predictions/{pid}/campaigns", {"min": 60, "max": 100}, token)
    assert again.status_code == 409 and again.json["error"]["code"] == "campaign_exists"


@pytest.mark.parametrize("status", ["preview", "demo"])
def test_demo_and_preview_predictions_show_analytics_but_cannot_be_targeted(site, status):
    pid = site.prediction().id
    token = _signed_in(site, pid)
    before = _post(site.client, f"/pages/predictions/{pid}/preview", {"min": 60, "max": 100}, token).json
    _demote(site, pid, status)
    response, html = _page(site.client, pid)
    assert response.status_code == 200
    for button in ("create-segment", "create-campaign"):
        assert "disabled" in re.search(rf'<button[^>]*id="{button}"[^>]*>', html).group(0)
    assert f"This is a {status} prediction" in re.search(r'id="not-targetable">([^<]*)<', html).group(1)
    # Analytics stay: the histogram and the slider's figures, the same as before the demotion.
    assert html.count('<rect class="bar"') == 20
    after = _post(site.client, f"/pages/predictions/{pid}/preview", {"min": 60, "max": 100}, token)
    assert after.status_code == 200 and after.json == before
    v1 = site.client.post("/v1/audiences/preview", json={"definition": score_tree(pid, 60, 100)}, headers=bearer())
    assert v1.status_code == 403
    for action in ("segments", "campaigns"):
        refused = _post(site.client, f"/pages/predictions/{pid}/{action}", {"min": 60, "max": 100}, token)
        assert refused.status_code == 403, action
        assert refused.json["error"]["code"] == "prediction_not_targetable"
        assert refused.json["error"]["details"]["status"] == status
    assert site.client.get("/v1/segments", headers=bearer()).json["segments"] == []
    assert site.client.get("/v1/campaigns", headers=bearer()).json["campaigns"] == []


def test_the_list_shows_the_workspaces_predictions(site):
    prediction = site.prediction()
    preview = new_prediction(site.engine, name="Untrained preview", status="preview")
    sign_in(site.client, "/predictions")
    html = site.client.get("/predictions", base_url=BASE).get_data(as_text=True)
    assert f'href="/predictions/{prediction.id}">{prediction.name}</a>' in html
    assert f'href="/predictions/{preview.id}">Untrained preview</a>' in html
    # An untrained prediction's page renders and says why it is empty: its first model is being built.
    response, page = _page(site.client, preview.id)
    assert response.status_code == 200 and "Building the first model" in page
    figures = _post(site.client, f"/pages/predictions/{preview.id}/preview", {"min": 0, "max": 100}, csrf_token(page))
    assert figures.status_code == 200
    assert figures.json["size"] == 0 and figures.json["targeting"] is None


def test_the_histogram_is_labelled_and_the_categories_are_charted_beside_it(site):
    """Issue 16 point 5: named axes, labelled cut lines, users per category next to the histogram."""
    prediction = site.prediction()
    sign_in(site.client, f"/predictions/{prediction.id}")
    _, page = _page(site.client, prediction.id)
    assert ">Event Likelihood Score</text>" in page and ">Users</text>" in page
    assert '>Medium ≥ 50</text>' in page and '>High ≥ 75</text>' in page
    rows = dict(re.findall(r'<tr data-category="([^"]+)"><td>[^<]*</td>\s*<td>[^<]*</td>\s*<td class="num">([0-9,]+)</td>', page))
    bars = dict(re.findall(r'class="category-bar" data-category="([^"]+)" data-users="([0-9]+)"', page))
    assert {k: int(v.replace(",", "")) for k, v in rows.items()} == {k: int(v) for k, v in bars.items()}
    assert set(bars) == {"Low", "Medium", "High"}
    assert page.index('id="histogram"') < page.index('id="category-chart"') < page.index('id="categories"')
    for label in ("Share of expected conversions", "Recall (test users)", "Precision (test users)"):
        assert label in page


def test_a_churn_prediction_trains_scores_and_shows_churn_risk(site):
    from plugin.predictions import training
    from tests.plugin.predictions_fixtures import AS_OF
    with transaction(site.engine) as conn:
        churn = definitions.create(conn, 1, {"name": "Lapsing", "goal_event": "session_start", "goal_kind": "churn",
                                             "window_days": 14, "status": "preview"}, max_active=5)
    model_id = training.train(site.engine, churn, AS_OF, training.TrainingOptions(min_positives=20, min_negatives=20))
    with site.engine.connect() as conn:
        churn = definitions.get(conn, 1, churn.id)
        metrics = models.load(conn, model_id).metrics
    scoring.score(site.engine, churn, AS_OF)
    # The labels are "did NOT start a session in 14 days" among users active in the 14 days before.
    assert 0 < metrics["base_rate"] < 1 and abs(metrics["mean_gap_pp"]) < 5
    _signed_in(site, churn.id)
    _, html = _page(site.client, churn.id)
    assert "Users per Churn Risk Score" in html and "<th>Churn Risk Category</th>" in html
    assert "not perform &#39;session_start&#39; again" in html or "not perform 'session_start' again" in html
