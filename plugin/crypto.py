"""Secrets at rest: Fernet tokens under the keys of LIKELY_SECRET_KEY.

The first key encrypts; every key decrypts, so a key is rotated by putting the new one first,
re-encrypting (`likely secrets rotate`) and then dropping the old one. Without configured keys
the embedded default generates one in the instance folder, next to its SQLite file.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import os
from pathlib import Path
from typing import Callable, Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

log = logging.getLogger(__name__)
KEY_FILE = "secret.key"


class UndecryptableSecret(Exception):
    """A stored secret was encrypted with a key that LIKELY_SECRET_KEY no longer holds."""


class Keyring:
    """The configured keys: encrypt with the first, decrypt with any."""

    def __init__(self, keys: Sequence[str]):
        if not keys:
            raise ValueError("a keyring needs at least one key")
        self._keys = tuple(keys)
        self._fernet = MultiFernet([Fernet(key) for key in self._keys])

    def encrypt(self, text: str) -> str:
        return self._fernet.encrypt(text.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise UndecryptableSecret("a stored secret cannot be decrypted with any key of "
                                      "LIKELY_SECRET_KEY (was its key removed before "
                                      "`likely secrets rotate` ran?)") from None

    def rotate(self, token: str) -> str:
        """The same secret encrypted under the first key."""
        try:
            return self._fernet.rotate(token.encode()).decode()
        except InvalidToken:
            raise UndecryptableSecret("a stored secret cannot be decrypted with any key of "
                                      "LIKELY_SECRET_KEY") from None

    def derived(self, purpose: str) -> list[bytes]:
        """One key per configured key for another use (e.g. signing cookies), first key first.

        Derived rather than reused, so a cookie-signing key never doubles as an encryption key.
        """
        return [hmac.new(key.encode(), purpose.encode(), hashlib.sha256).digest() for key in self._keys]


def generate_key() -> str:
    return Fernet.generate_key().decode()


def instance_key(instance_path: str | os.PathLike) -> str:
    """The embedded default's key, created once (safely when several workers start together)."""
    path = Path(instance_path) / KEY_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(generate_key())
    log.warning("LIKELY_SECRET_KEY is not set: secrets are encrypted with a key generated in %s; "
                "set LIKELY_SECRET_KEY (the same on every machine) in production", path)
    return path.read_text().strip()


def keyring_for(settings: dict, instance_path: str | os.PathLike) -> Keyring:
    return Keyring(settings.get("secret_keys") or [instance_key(instance_path)])


# The web layer installs how to find the running app's keyring (None outside an app).
def _outside_an_app() -> "Keyring | None":
    return None


_app_keyring: Callable[[], "Keyring | None"] = _outside_an_app


def use_app_keyring(resolver: Callable[[], "Keyring | None"]) -> None:
    global _app_keyring
    _app_keyring = resolver


def current() -> Keyring:
    """The app's keyring, or — outside an app (CLI helpers, tests) — the one the environment gives."""
    keyring = _app_keyring()
    if keyring is not None:
        return keyring
    from plugin import settings
    instance_path = settings.default_instance_path()
    return keyring_for(settings.load(instance_path), instance_path)


def rotate_stored(engine, keyring: Keyring) -> dict[str, int]:
    """Re-encrypt every stored secret under the first key, in one transaction.

    After it, keys other than the first may be dropped from LIKELY_SECRET_KEY.
    """
    from sqlalchemy import select, update

    from plugin.store import transaction
    from plugin.store.tables import webhook_secrets, workspaces
    counts = {"webhook_secrets": 0, "workspace_settings": 0}
    with transaction(engine) as conn:
        for row in conn.execute(select(webhook_secrets.c.id, webhook_secrets.c.secret_encrypted)).all():
            conn.execute(update(webhook_secrets).where(webhook_secrets.c.id == row.id)
                         .values(secret_encrypted=keyring.rotate(row.secret_encrypted)))
            counts["webhook_secrets"] += 1
        for row in conn.execute(select(workspaces.c.id, workspaces.c.secret_settings)
                                .where(workspaces.c.secret_settings.is_not(None))).all():
            conn.execute(update(workspaces).where(workspaces.c.id == row.id)
                         .values(secret_settings=keyring.rotate(row.secret_settings)))
            counts["workspace_settings"] += 1
    return counts
