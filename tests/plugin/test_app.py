"""App-wide behaviour: health, JSON errors, settings validation, API-key auth."""
import pytest
from flask import jsonify

from plugin import create_app, settings
from plugin.api import v1
from plugin.errors import SettingsError
from tests.helpers import API_KEY, bearer


def test_healthz_reports_the_store(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json == {"status": "ok", "store": "ok"}


def test_healthz_reports_an_unreachable_store():
    app = create_app({"database_url": "postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2"})
    response = app.test_client().get("/healthz")
    assert response.status_code == 503 and response.json["store"] == "unreachable"


@pytest.mark.parametrize("method, path, status", [("GET", "/nope", 404), ("GET", "/webhooks/events", 405),
                                                   ("PUT", "/healthz", 405)])
def test_http_errors_are_json(client, method, path, status):
    response = client.open(path, method=method)
    assert response.status_code == status
    assert response.is_json and set(response.json["error"]) == {"code", "message", "details"}


def test_unexpected_errors_are_json_without_internals(app):
    @app.get("/boom")
    def boom():
        raise RuntimeError("secret internals")
    response = app.test_client().get("/boom")
    assert response.status_code == 500 and response.json["error"]["code"] == "internal_error"
    assert "secret internals" not in response.get_data(as_text=True)


def test_settings_from_environment(tmp_path):
    env = {"LIKELY_DATABASE_URL": f"sqlite:///{tmp_path}/x.sqlite", "LIKELY_API_KEYS": "k" * 20 + ", " + "j" * 20,
           "LIKELY_MAX_BATCH_ROWS": "50"}
    loaded = settings.load(str(tmp_path), environ=env)
    assert loaded["api_keys"] == ["k" * 20, "j" * 20] and loaded["max_batch_rows"] == 50
    assert loaded["max_body_bytes"] == 10 * 1024 * 1024


def test_default_database_is_sqlite_in_the_instance_folder(tmp_path):
    assert settings.load(str(tmp_path), environ={})["database_url"] == f"sqlite:///{tmp_path}/likely.sqlite"


@pytest.mark.parametrize("env, named", [
    ({"LIKELY_WEBHOOK_SECRETS": "not-a-whsec-secret"}, "LIKELY_WEBHOOK_SECRETS"),
    ({"LIKELY_API_KEYS": "short"}, "LIKELY_API_KEYS"),
    ({"LIKELY_DATABASE_URL": "mysql://x"}, "LIKELY_DATABASE_URL"),
    ({"LIKELY_MAX_BATCH_ROWS": "lots"}, "LIKELY_MAX_BATCH_ROWS"),
    ({"LIKELY_LOG_LEVEL": "LOUD"}, "LIKELY_LOG_LEVEL"),
])
def test_bad_settings_are_named_and_secrets_not_echoed(tmp_path, env, named):
    with pytest.raises(SettingsError) as raised:
        settings.load(str(tmp_path), environ=env)
    assert named in str(raised.value)
    if "SECRETS" in named or "KEYS" in named:
        assert list(env.values())[0] not in str(raised.value)


def test_v1_requires_a_valid_api_key(app, engine):
    bp = v1.blueprint("probe", __name__, "/probe")

    @bp.get("")
    def probe():
        return jsonify({"workspace": v1.workspace().slug})
    app.register_blueprint(bp)
    client = app.test_client()
    assert client.get("/v1/probe").status_code == 401
    assert client.get("/v1/probe", headers=bearer("wrong-key-0000000000")).json["error"]["code"] == "invalid_credentials"
    assert client.get("/v1/probe", headers=bearer(API_KEY)).json == {"workspace": "default"}
    # A stored (hashed) key of another workspace resolves to that workspace only.
    from plugin import workspaces
    acme = workspaces.ensure(engine, "acme")
    workspaces.add_api_key(engine, acme, "acme-key-0123456789abc")
    assert client.get("/v1/probe", headers=bearer("acme-key-0123456789abc")).json == {"workspace": "acme"}


def test_every_v1_route_requires_an_api_key(app, client):
    """Generic over the URL map, so /v1 endpoints added later are covered too."""
    routes = [r for r in app.url_map.iter_rules() if r.rule.startswith("/v1/")]
    for rule in routes:
        path = rule.rule
        for argument in rule.arguments:
            path = path.replace(f"<{argument}>", "1").replace(f"<int:{argument}>", "1")
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            for headers in ({}, bearer("not-a-real-key-00000000")):
                response = client.open(path, method=method, headers=headers, json={})
                assert response.status_code == 401, (method, rule.rule, response.status_code)
