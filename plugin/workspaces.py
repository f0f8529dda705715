"""Workspaces (one per host account) and their credentials."""
from __future__ import annotations

import base64
import binascii
import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import Iterable

import jsonschema
from sqlalchemy import Connection, Engine, bindparam, delete, insert, select

from plugin import crypto
from plugin.errors import NotFound, ValidationFailed
from plugin.store import is_postgres, transaction
from plugin.store.tables import api_keys, webhook_secrets, workspaces
from plugin.store.types import utcnow

DEFAULT = "default"
ACTIVE, UNINSTALLED = "active", "uninstalled"
SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
API_KEY_PREFIX = "lk_"
# Host-facing paths are /webhooks/<workspace>/…: a workspace named like these would clash with them.
PATH_WORDS = frozenset({"install", "uninstall", "events", "users"})


@dataclass(frozen=True)
class Workspace:
    id: int
    slug: str
    status: str = ACTIVE

    @property
    def active(self) -> bool:
        return self.status == ACTIVE


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def new_webhook_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def check_new_credentials(slug: str, api_keys: Iterable[str] = (),
                          webhook_secrets: Iterable[str] = ()) -> None:
    """Apply the manifest's rules to a slug and credentials given by hand (the CLI).

    The same rules as LIKELY_API_KEYS / LIKELY_WEBHOOK_SECRETS in manifest.json and the install
    webhook: a slug of the SLUG pattern that is no path word, keys of at least 16 characters,
    `whsec_` secrets of at least 24 base64 characters. Raises ValidationFailed naming every bad
    field; a credential's value is never echoed.
    """
    from plugin.settings import settings_schema
    properties = settings_schema()["properties"]
    problems: dict[str, list[str]] = {}
    if not SLUG.match(slug or ""):
        problems.setdefault("slug", []).append(
            "A workspace slug is 1-64 lowercase letters, digits, _ and -, starting with a letter or digit.")
    elif slug in PATH_WORDS:
        problems.setdefault("slug", []).append(f"{slug!r} is reserved (it names a webhook path).")
    checks = (("api_key", api_keys, properties["api_keys"]["items"]),
              ("webhook_secret", webhook_secrets, properties["webhook_secrets"]["items"]))
    for field, values, rule in checks:
        validator = jsonschema.Draft202012Validator(rule)
        for position, value in enumerate(values, start=1):
            errors = sorted(e.validator for e in validator.iter_errors(value))
            if field == "webhook_secret" and not errors and not _decodes(value):
                errors = ["base64"]
            if errors:
                problems.setdefault(field, []).append(f"#{position} is not valid ({', '.join(errors)}): "
                                                      + _RULES[field])
    if problems:
        raise ValidationFailed("invalid workspace or credentials; nothing was written",
                               code="invalid_credentials", details=problems)


_RULES = {"api_key": "an API key has at least 16 characters.",
          "webhook_secret": "a webhook secret is whsec_ followed by at least 24 base64 characters."}


def _decodes(secret: str) -> bool:
    try:
        return bool(base64.b64decode(secret.removeprefix("whsec_"), validate=True))
    except (binascii.Error, ValueError):
        return False


def ensure(engine: Engine, slug: str, name: str | None = None) -> Workspace:
    """Get or create a workspace by slug (safe when several processes race)."""
    with transaction(engine) as conn:
        return ensure_in(conn, slug, name)


def ensure_in(conn: Connection, slug: str, name: str | None = None) -> Workspace:
    found = _find(conn, slug)
    if found:
        return found
    values = {"slug": slug, "name": name or slug, "settings": {}, "created_at": utcnow()}
    if is_postgres(conn):
        from sqlalchemy.dialects.postgresql import insert as pg_insert
        conn.execute(pg_insert(workspaces).values(values).on_conflict_do_nothing())
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert
        conn.execute(sqlite_insert(workspaces).values(values).on_conflict_do_nothing())
    return _find(conn, slug)


def get(conn: Connection, slug: str) -> Workspace:
    found = _find(conn, slug) if SLUG.match(slug or "") else None
    if not found:
        raise NotFound(f"workspace {slug!r} does not exist", code="workspace_not_found")
    return found


def find(conn: Connection, slug: str) -> Workspace | None:
    """The workspace with this slug, whatever its status, or None."""
    return _find(conn, slug)


# Built once: every authenticated request runs it, and building costs a third of running it.
_BY_SLUG = (select(workspaces.c.id, workspaces.c.slug, workspaces.c.status)
            .where(workspaces.c.slug == bindparam("slug")))


def _find(conn: Connection, slug: str) -> Workspace | None:
    row = conn.execute(_BY_SLUG, {"slug": slug}).first()
    return Workspace(row.id, row.slug, row.status) if row else None


def add_api_key(engine: Engine, workspace: Workspace, key: str, label: str = "") -> None:
    with transaction(engine) as conn:
        add_api_key_in(conn, workspace, key, label)


def add_api_key_in(conn: Connection, workspace: Workspace, key: str, label: str = "") -> None:
    conn.execute(insert(api_keys).values(workspace_id=workspace.id, key_hash=hash_key(key),
                                         label=label, created_at=utcnow()))


def replace_api_key(engine: Engine, workspace: Workspace, key: str, label: str) -> int:
    """Make `key` the workspace's only key with this label; return how many it revoked."""
    with transaction(engine) as conn:
        revoked = conn.execute(delete(api_keys).where(api_keys.c.workspace_id == workspace.id,
                                                      api_keys.c.label == label)).rowcount
        add_api_key_in(conn, workspace, key, label)
    return revoked


def add_webhook_secret(engine: Engine, workspace: Workspace, secret: str,
                       keyring: crypto.Keyring | None = None) -> None:
    with transaction(engine) as conn:
        add_webhook_secret_in(conn, workspace, secret, keyring)


def add_webhook_secret_in(conn: Connection, workspace: Workspace, secret: str,
                          keyring: crypto.Keyring | None = None) -> None:
    """Store a signing secret encrypted: the store alone never yields a usable secret."""
    token = (keyring or crypto.current()).encrypt(secret)
    conn.execute(insert(webhook_secrets).values(workspace_id=workspace.id, secret_encrypted=token,
                                                created_at=utcnow()))


def workspace_for_api_key(conn: Connection, key: str) -> Workspace | None:
    """The active workspace the key belongs to; an uninstalled workspace's keys are dead."""
    row = conn.execute(
        select(workspaces.c.id, workspaces.c.slug, workspaces.c.status)
        .join(api_keys, api_keys.c.workspace_id == workspaces.c.id)
        .where(api_keys.c.key_hash == hash_key(key), workspaces.c.status == ACTIVE)
    ).first()
    return Workspace(row.id, row.slug, row.status) if row else None


def stored_webhook_secrets(conn: Connection, workspace: Workspace,
                           keyring: crypto.Keyring | None = None) -> list[str]:
    keyring = keyring or crypto.current()
    tokens = conn.execute(select(webhook_secrets.c.secret_encrypted)
                          .where(webhook_secrets.c.workspace_id == workspace.id)
                          .order_by(webhook_secrets.c.id)).scalars()
    return [keyring.decrypt(token) for token in tokens]
