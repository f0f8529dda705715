"""Connector settings: JSON Schema as data, validation, defaults and secret handling."""
from __future__ import annotations

import copy
import threading
from typing import Any, Iterable, Mapping

import jsonschema
import jsonschema.validators

from . import net
from .errors import ConfigurationError

SECRET = {"writeOnly": True, "x-secret": True}

# Settings every connector understands; merged into each connector's schema.
COMMON_PROPERTIES: dict[str, dict] = {
    "enabled": {"type": "boolean", "default": False, "title": "Enabled"},
    "timeout_seconds": {"type": "number", "minimum": 1, "maximum": 120, "default": 10,
                        "title": "Timeout of each provider call (seconds)"},
    "max_attempts": {"type": "integer", "minimum": 1, "maximum": 10, "default": 4,
                     "title": "Attempts per item within one delivery run"},
    "rate_limit_per_second": {"type": ["number", "null"], "exclusiveMinimum": 0, "default": None,
                              "title": "Maximum provider requests per second (empty: provider default)"},
}


def secret(schema: dict) -> dict:
    """Mark a property as secret: write-only in the manifest form and redacted everywhere."""
    return {**schema, **SECRET}


def connector_schema(title: str, properties: Mapping[str, dict],
                     required: Iterable[str] = ()) -> dict:
    """A connector's settings schema: its own properties plus the common ones."""
    return {
        "type": "object",
        "title": title,
        "properties": {**copy.deepcopy(COMMON_PROPERTIES), **copy.deepcopy(dict(properties))},
        "required": list(required),
        "additionalProperties": False,
    }


def _allowed_hosts(validator: Any, hosts: list[str], instance: Any, schema: dict):
    """The `x-allowed-hosts` keyword: an https URL on one of the provider's documented hosts, or
    on a host the operator trusts (the process's `net.policy()`, read when validating)."""
    if instance == "" and not schema.get("minLength"):
        return  # an optional URL left empty
    problem = net.url_problem(instance, hosts, net.policy())
    if problem:
        yield jsonschema.ValidationError(f"is {problem} ({', '.join(hosts)})")


def _destination(validator: Any, flag: bool, instance: Any, schema: dict):
    """The `x-destination` keyword on a free-form URL or host (webhook, SMTP, the host's own
    endpoint): no internal IP literal or `localhost` as written. What a name resolves to is
    checked when connecting (connectors.net)."""
    if not flag or "x-allowed-hosts" in schema or not isinstance(instance, str) or not instance:
        return
    problem = (net.url_problem(instance, None, net.policy()) if "://" in instance
               else net.host_problem(instance, net.policy()))
    if problem:
        yield jsonschema.ValidationError(f"is {problem}")


# Draft 2020-12 plus likely's two keywords; the settings form in manifest.json uses the same.
SettingsValidator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator, {"x-allowed-hosts": _allowed_hosts, "x-destination": _destination})


def validate_settings(schema: dict, settings: Mapping[str, Any]) -> dict:
    """Validate and fill defaults. Errors name the field and the rule, never the value."""
    validator = SettingsValidator(schema)
    errors = sorted(validator.iter_errors(dict(settings)), key=lambda e: list(e.path))
    if errors:
        problems = []
        for error in errors[:5]:
            where = ".".join(str(p) for p in error.path) or "(settings)"
            if error.validator == "required":
                missing = [name for name in schema.get("required", []) if name not in settings]
                where = ", ".join(missing) or where
            elif error.validator == "additionalProperties":
                unknown = sorted(set(settings) - set(schema.get("properties", {})))
                where = ", ".join(unknown) or where
            problems.append(f"{where} ({error.validator})")
        raise ConfigurationError(f"{schema.get('title', 'connector')}: invalid settings: "
                                 + "; ".join(problems))
    filled = dict(settings)
    for name, prop in schema.get("properties", {}).items():
        if name not in filled and "default" in prop:
            filled[name] = copy.deepcopy(prop["default"])
    return filled


def secret_names(schema: dict) -> list[str]:
    return [name for name, prop in schema.get("properties", {}).items() if prop.get("x-secret")]


class Redactor:
    """Replaces every known secret value in a text; connectors run all reasons and logs through it."""

    def __init__(self, secrets: Iterable[str] = ()):
        # Replaced, never mutated: worker threads redact while another thread adds a fresh token.
        self._secrets: tuple[str, ...] = ()
        self._lock = threading.Lock()
        for value in secrets:
            self.add(value)

    def add(self, value: Any) -> None:
        # Very short values would redact innocent text and are not meaningful secrets anyway.
        if not (isinstance(value, str) and len(value) >= 4):
            return
        new = {value}
        # A PEM key may be quoted line by line (or its escaped JSON form): cover both.
        for line in value.replace("\\n", "\n").splitlines():
            if len(line.strip()) >= 16:
                new.add(line.strip())
        with self._lock:
            self._secrets = tuple(sorted(set(self._secrets) | new, key=len, reverse=True))

    def __call__(self, text: Any) -> Any:
        if not isinstance(text, str):
            return text
        for value in self._secrets:  # longest first, so a secret's parts never pre-empt it
            if value in text:
                text = text.replace(value, "***")
        return text
