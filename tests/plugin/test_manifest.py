"""manifest.json is the single source the host reads: it must match the app exactly."""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

import jsonschema
import pytest

import connectors
from plugin import settings, workspace_settings
from tests.helpers import PARTNER_SECRET, post_signed

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = settings.manifest()


def test_identity_and_version_match_the_package():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert MANIFEST["id"] == project["name"] == "likely"
    assert MANIFEST["version"] == project["version"]
    assert MANIFEST["name"] and MANIFEST["description"]


def _webhook_routes(app) -> set[tuple[str, str]]:
    return {(method, re.sub(r"<(?:[^>:]+:)?([^>]+)>", r"{\1}", rule.rule))
            for rule in app.url_map.iter_rules() if rule.rule.startswith("/webhooks/")
            for method in rule.methods - {"HEAD", "OPTIONS"}}


def test_every_manifest_webhook_exists_in_the_app_and_vice_versa(app):
    declared = set()
    for hook in MANIFEST["webhooks"]:
        assert hook["accepts"] and hook["signed_with"] in MANIFEST["signing"]["secrets"]
        declared.add((hook["method"], hook["path"]))
        if "workspace_path" in hook:
            declared.add((hook["method"], hook["workspace_path"]))
    assert declared == _webhook_routes(app)


def test_partner_signed_webhooks_really_need_the_partner_secret(app_settings):
    """The manifest's `signed_with` is what the app enforces."""
    from plugin import create_app
    app = create_app({**app_settings, "partner_secrets": [PARTNER_SECRET]})
    client = app.test_client()
    for hook in MANIFEST["webhooks"]:
        if hook["signed_with"] == "partner":
            assert post_signed(client, hook["path"], {}, secret=PARTNER_SECRET).status_code == 400
        else:
            assert post_signed(client, hook["path"], {}, secret=PARTNER_SECRET).status_code == 401
    app.extensions["likely_engine"].dispose()


def test_signing_scheme_is_standard_webhooks():
    signing = MANIFEST["signing"]
    assert signing["scheme"] == "standard-webhooks" and signing["tolerance_seconds"] == 300
    assert signing["headers"] == ["webhook-id", "webhook-timestamp", "webhook-signature"]


def _secret_properties(schema: dict, path: str = ""):
    for name, prop in schema.get("properties", {}).items():
        yield f"{path}{name}", prop
        if isinstance(prop, dict):
            yield from _secret_properties(prop, f"{path}{name}.")
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        yield from _secret_properties(extra, f"{path}*.")


@pytest.mark.parametrize("schema", [settings.settings_schema(), workspace_settings.schema()],
                         ids=["deployment", "workspace"])
def test_secret_fields_are_marked_write_only(schema):
    jsonschema.Draft202012Validator.check_schema(schema)
    secrets = [(path, prop) for path, prop in _secret_properties(schema) if prop.get("x-secret")]
    assert secrets
    for path, prop in secrets:
        assert prop.get("writeOnly") is True, path


def test_deployment_settings_name_their_variables():
    for name, prop in settings.settings_schema()["properties"].items():
        assert prop["x-env"].startswith("LIKELY_"), name
    assert {"LIKELY_SECRET_KEY", "LIKELY_PARTNER_SECRETS", "LIKELY_HOST_ORIGIN", "LIKELY_UNINSTALL_GRACE_DAYS"} <= {
        p["x-env"] for p in settings.settings_schema()["properties"].values()}


def test_the_form_has_the_host_account_and_a_place_for_connectors():
    form = MANIFEST["workspace_settings"]
    assert {"base_url", "region", "api_key", "signing_secret"} <= set(form["properties"]["host"]["properties"])
    assert form["properties"]["connectors"]["x-supplied-by"] == "connectors.registry.settings_schema"


def test_the_served_manifest_has_the_registry_connector_schema(client):
    served = client.get("/manifest.json").json
    assert served["workspace_settings"]["properties"]["connectors"] == connectors.settings_schema()
    assert {k: v for k, v in served.items() if k != "workspace_settings"} == \
        {k: v for k, v in MANIFEST.items() if k != "workspace_settings"}


def test_jobs_are_declared():
    kinds = [job["kind"] for job in MANIFEST["jobs"]]
    assert len(kinds) == len(set(kinds))
    # refresh_segments also syncs each segment's destinations by difference.
    assert {"rescore", "retrain", "refresh_segments", "run_campaigns", "deliver_outbox",
            "backtest", "writeback_scores", "purge_uninstalled"} <= set(kinds)


def test_jobs_match_the_scheduler_registry():
    registry = pytest.importorskip("plugin.jobs.registry", reason="plugin.jobs is not merged yet")
    expected = set(getattr(registry, "EXPECTED_KINDS", {}))
    assert {job["kind"] for job in MANIFEST["jobs"]} <= expected | {"purge_uninstalled"}


def _audience_filters() -> dict:
    """The filter schemas plugin.audiences exports ({name: marshmallow schema class})."""
    try:
        from plugin.audiences import schema as audience_schema
    except ImportError:
        pytest.skip("plugin.audiences is not merged yet: filters are checked against it at merge")
    leaves = getattr(audience_schema, "LEAVES", None)
    if leaves is None:
        pytest.skip("plugin.audiences.schema exports no LEAVES")
    return leaves


def test_filters_match_the_audience_schema():
    leaves = _audience_filters()
    declared = {f["id"]: f for f in MANIFEST["audience_filters"]}
    assert set(declared) == set(leaves)
    for name, leaf in leaves.items():
        operands = {field.data_key or key for key, field in leaf().fields.items()} - {"filter"}
        assert set(declared[name]["operands"]["properties"]) == operands, name


def test_likelihood_filters_have_their_operands():
    declared = {f["id"]: f["operands"] for f in MANIFEST["audience_filters"]}
    score = declared["event_likelihood_score"]["properties"]
    assert {"prediction", "gt", "gte", "lt", "lte"} == set(score)
    assert all(score[op]["minimum"] == 0 and score[op]["maximum"] == 100 for op in ("gt", "gte", "lt", "lte"))
    assert set(declared["event_likelihood_category"]["properties"]) == {"prediction", "in"}
    assert {"attribute", "performed", "reachable"} <= set(declared)
    for operands in declared.values():
        jsonschema.Draft202012Validator.check_schema(operands)
