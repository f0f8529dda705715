"""A workspace's settings: the integration form the marketer saves in the host.

Validated against `workspace_settings` in manifest.json (its `connectors` part is supplied by
the connector registry). Fields marked `x-secret` never rest in plaintext: the `settings`
column keeps the rest, `secret_settings` one Fernet token of the secret fields. Readers get
the merged whole through `read()`; responses show secrets as REDACTED.
"""
from __future__ import annotations

import copy
import json
from functools import lru_cache
from typing import Any, Iterator, Mapping

import jsonschema
from sqlalchemy import Connection, select, update

from connectors.settings import SettingsValidator
from plugin import crypto
from plugin.errors import ValidationFailed
from plugin.settings import manifest
from plugin.store.tables import workspaces

REDACTED = "********"
Path = tuple[str, ...]


@lru_cache(maxsize=1)
def schema() -> dict:
    """The manifest's workspace settings schema with the registry's connector schema in place."""
    import connectors
    resolved = copy.deepcopy(manifest()["workspace_settings"])
    resolved["properties"]["connectors"] = connectors.settings_schema()
    return resolved


def response_schema() -> dict:
    """The schema of settings as responses show them: each secret is REDACTED."""
    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            if node.get("x-secret"):
                return {"type": "string", "enum": [REDACTED], "readOnly": True, "x-secret": True,
                        **({"title": node["title"]} if "title" in node else {})}
            return {key: walk(value) for key, value in node.items()}
        if isinstance(node, list):
            return [walk(value) for value in node]
        return node
    return walk(schema())


def patch_schema() -> dict:
    """The schema of a JSON merge patch of the settings: nothing required, null removes."""
    def walk(node: Any) -> Any:
        if not isinstance(node, dict):
            return node
        node = {key: value for key, value in node.items() if key != "required"}
        for key in ("properties",):
            if key in node:
                node[key] = {name: {"anyOf": [walk(sub), {"type": "null"}]} for name, sub in node[key].items()}
        if isinstance(node.get("additionalProperties"), dict):
            node["additionalProperties"] = {"anyOf": [walk(node["additionalProperties"]), {"type": "null"}]}
        return node
    return walk(copy.deepcopy(schema()))


def _subschema(node: Mapping, key: str) -> Mapping:
    if key in node.get("properties", {}):
        return node["properties"][key]
    extra = node.get("additionalProperties")
    return extra if isinstance(extra, Mapping) else {}


def secret_paths(settings: Mapping, node: Mapping | None = None, prefix: Path = ()) -> Iterator[Path]:
    """Paths of the secret values present in `settings` (secrets live in nested objects)."""
    node = schema() if node is None else node
    for key, value in settings.items():
        sub = _subschema(node, key)
        if sub.get("x-secret"):
            yield (*prefix, key)
        elif isinstance(value, Mapping):
            yield from secret_paths(value, sub, (*prefix, key))


def is_secret(path: Path) -> bool:
    node: Mapping = schema()
    for key in path:
        node = _subschema(node, str(key))
        if node.get("x-secret"):
            return True
    return False


def _get(settings: Mapping, path: Path) -> Any:
    for key in path:
        settings = settings[key]
    return settings


def _set(settings: dict, path: Path, value: Any) -> None:
    for key in path[:-1]:
        settings = settings.setdefault(key, {})
    settings[path[-1]] = value


def _pop(settings: dict, path: Path) -> Any:
    for key in path[:-1]:
        settings = settings[key]
    return settings.pop(path[-1])


def redact(settings: Mapping) -> dict:
    shown = copy.deepcopy(dict(settings))
    for path in list(secret_paths(shown)):
        _set(shown, path, REDACTED)
    return shown


def keep_unchanged_secrets(new: Mapping, current: Mapping, sent: Mapping | None = None) -> dict:
    """A secret sent back as REDACTED (a form echoing what it was shown) keeps its stored value —
    unless its section's destination (a URL or host, `x-destination`) changed: then the stored
    secrets of that section are dropped and only values `sent` with this change are kept, so a
    credential can never be carried to a destination it was not given for.

    `sent` is what the caller sent (a merge patch); by default `new` itself (a whole form).
    """
    merged = copy.deepcopy(dict(new))
    sent = merged if sent is None else sent
    for path in list(secret_paths(merged)):
        moved = _destination_changed(merged, current, path[:-1])
        if moved and _sent_value(sent, path) in (None, REDACTED):
            _pop(merged, path)
        elif _get(merged, path) == REDACTED:
            try:
                _set(merged, path, _get(current, path))
            except (KeyError, TypeError):
                _pop(merged, path)
    return merged


def _sent_value(sent: Mapping, path: Path) -> Any:
    try:
        return _get(sent, path)
    except (KeyError, TypeError):
        return None


def _destination_changed(new: Mapping, current: Mapping, section: Path) -> bool:
    """Whether any `x-destination` field of the object at `section` differs (defaults count)."""
    node: Mapping = schema()
    for key in section:
        node = _subschema(node, str(key))
    fields = {name: prop for name, prop in node.get("properties", {}).items() if prop.get("x-destination")}
    if not fields or not current:
        return False
    before, after = _sent_value(current, section), _sent_value(new, section)
    before = before if isinstance(before, Mapping) else {}
    after = after if isinstance(after, Mapping) else {}
    return any(before.get(name, prop.get("default")) != after.get(name, prop.get("default"))
               for name, prop in fields.items())


def merge_patch(current: Mapping, patch: Mapping) -> dict:
    """RFC 7386 JSON merge patch: objects merge, null removes, anything else replaces."""
    result = copy.deepcopy(dict(current))
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(result.get(key), Mapping):
            result[key] = merge_patch(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def validate(settings: Any, field: str = "") -> dict:
    """Raise 400 naming every bad field (dotted path); a secret's value is never echoed."""
    validator = SettingsValidator(schema(), format_checker=jsonschema.FormatChecker())
    errors: dict[str, list[str]] = {}
    for error in validator.iter_errors(settings):
        path = tuple(str(p) for p in error.absolute_path)
        name = ".".join(p for p in (field, *path) if p) or field or "settings"
        if is_secret(path):
            message = f"is not valid ({error.validator})"
        elif error.validator == "additionalProperties":
            message = "unknown field(s): " + ", ".join(
                sorted(set(error.instance) - set(error.schema.get("properties", {}))))
        else:
            message = error.message
        errors.setdefault(name, []).append(message)
    zone = settings.get("quiet_hours", {}).get("time_zone") if isinstance(settings, Mapping) and \
        isinstance(settings.get("quiet_hours"), Mapping) else None
    if isinstance(zone, str) and not _iana(zone):
        # JSON Schema cannot know the IANA database; a typo would silently mean UTC.
        errors.setdefault(".".join(p for p in (field, "quiet_hours", "time_zone") if p), []).append(
            f"{zone!r} is not an IANA time zone (e.g. Europe/Paris)")
    if errors:
        raise ValidationFailed("the settings have invalid fields; nothing was saved",
                               code="invalid_settings", details=errors)
    return dict(settings)


def read(conn: Connection, workspace_id: int, keyring: crypto.Keyring | None = None) -> dict:
    """The workspace's settings, secrets decrypted: what campaign and connector code uses."""
    row = conn.execute(select(workspaces.c.settings, workspaces.c.secret_settings)
                       .where(workspaces.c.id == workspace_id)).first()
    if row is None:
        return {}
    settings = copy.deepcopy(row.settings) if isinstance(row.settings, dict) else {}
    if row.secret_settings:
        secrets = json.loads((keyring or crypto.current()).decrypt(row.secret_settings))
        for path, value in secrets:
            _set(settings, tuple(path), value)
    return settings


def write(conn: Connection, workspace_id: int, settings: Mapping,
          keyring: crypto.Keyring | None = None) -> None:
    """Store validated settings: the secret fields as one encrypted token, the rest as JSON."""
    public = copy.deepcopy(dict(settings))
    secrets = [[list(path), _pop(public, path)] for path in list(secret_paths(public))]
    token = (keyring or crypto.current()).encrypt(json.dumps(secrets)) if secrets else None
    conn.execute(update(workspaces).where(workspaces.c.id == workspace_id)
                 .values(settings=public, secret_settings=token))


def _iana(name: str) -> bool:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True
