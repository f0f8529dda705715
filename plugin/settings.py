"""Settings: environment variables validated against the JSON Schema in manifest.json."""
from __future__ import annotations

import json
import os
import sys
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jsonschema

from plugin.errors import SettingsError
from plugin.observability.redaction import redact

LIST_SETTINGS = {"webhook_secrets", "api_keys"}


@lru_cache(maxsize=1)
def manifest() -> dict:
    """The manifest shipped inside the package.

    The host reads `manifest.json` at the project's top level; `plugin/manifest.json` is a
    symlink to it in the checkout and a real file in the wheel, so there is one source.
    """
    return json.loads(resources.files("plugin").joinpath("manifest.json").read_text(encoding="utf-8"))


def default_instance_path() -> str:
    """Where the embedded default keeps its SQLite file and key (Flask's rule for an app's
    instance folder): `<prefix>/var/plugin-instance` when installed, else `instance/` beside
    the package in a checkout. The app is created with this same path."""
    package_parent = Path(__file__).resolve().parent.parent
    prefix = Path(sys.prefix).resolve()
    if package_parent.is_relative_to(prefix):
        return str(prefix / "var" / "plugin-instance")
    return str(package_parent / "instance")


# The web layer installs how to find the running app's settings (None outside an app).
def _outside_an_app() -> "dict | None":
    return None


_app_settings: Callable[[], "dict | None"] = _outside_an_app


def use_app_settings(resolver: Callable[[], "dict | None"]) -> None:
    global _app_settings
    _app_settings = resolver


def current() -> dict:
    """The running app's settings, or — outside an app — the environment's."""
    found = _app_settings()
    return found if found is not None else load(default_instance_path())


def settings_schema() -> dict:
    return manifest()["settings"]


def _from_env(environ: Mapping[str, str], instance_path: str) -> dict[str, Any]:
    """Read every setting the schema names an `x-env` variable for."""
    values: dict[str, Any] = {}
    for name, spec in settings_schema()["properties"].items():
        raw = environ.get(spec.get("x-env", ""))
        if raw is None or raw == "":
            continue
        if name in LIST_SETTINGS or spec.get("type") == "array":
            values[name] = [part.strip() for part in raw.split(",") if part.strip()]
        elif spec.get("type") == "integer":
            try:
                values[name] = int(raw)
            except ValueError:
                raise SettingsError(f"{spec['x-env']} must be a whole number, got {raw!r}") from None
        else:
            values[name] = raw
    values.setdefault("database_url", f"sqlite:///{Path(instance_path) / 'likely.sqlite'}")
    return values


def validate(values: dict[str, Any]) -> dict[str, Any]:
    """Validate against the manifest schema, filling defaults; name the bad setting on error."""
    schema = settings_schema()
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(values),
                    key=lambda e: list(e.absolute_path))
    if errors:
        problems = []
        for error in errors:
            path = list(error.absolute_path)
            name = str(path[0]) if path else (error.message.split("'")[1] if "'" in error.message else "settings")
            spec = schema["properties"].get(name, {})
            label = spec.get("x-env", name)
            # Never echo a secret value back in the message.
            # A URL's password is masked too (`postgres://u:***@db/x`): start-up errors reach logs.
            reason = "is not valid" if spec.get("x-secret") else redact(error.message)
            problems.append(f"{label}: {reason}")
        raise SettingsError("invalid settings: " + "; ".join(problems))
    filled = dict(values)
    for name, spec in schema["properties"].items():
        if name not in filled and "default" in spec:
            filled[name] = spec["default"]
    _check_timezone(filled.get("timezone", "UTC"))
    if filled.get("environment") == "production" and not filled.get("metrics_token"):
        # /metrics names workspaces' job kinds and volumes: never open on a production server.
        raise SettingsError("invalid settings: LIKELY_METRICS_TOKEN: required when LIKELY_ENVIRONMENT="
                            "production (/metrics would be open to anyone who can reach the server)")
    return filled


def _check_timezone(name: str) -> None:
    # JSON Schema cannot know the IANA database; a typo would otherwise surface at 3 a.m.
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingsError(f"invalid settings: LIKELY_TIMEZONE: {name!r} is not an IANA time zone "
                            "(e.g. UTC, Europe/Paris)") from None


def load(instance_path: str, environ: Mapping[str, str] | None = None,
         overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    values = _from_env(os.environ if environ is None else environ, instance_path)
    values.update(overrides or {})
    return validate(values)
