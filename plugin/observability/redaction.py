"""Secrets out of text: patterns for the kinds of secret likely handles, plus known values.

Used by the logging filter and formatter and by the job run log, so a secret that reaches an
exception message or a log argument is masked before it is written anywhere.
"""
from __future__ import annotations

import re
import threading
from typing import Iterable

MASK = "***"

# Each pattern with the lowercase fragments one of which any match must contain: most lines
# (every access line) contain none, and a substring test is far cheaper than a regex scan.
_PATTERNS: tuple[tuple[re.Pattern[str], str, tuple[str, ...]], ...] = (
    # Standard Webhooks signing secrets.
    (re.compile(r"whsec_[A-Za-z0-9+/=_-]+"), "whsec_" + MASK, ("whsec_",)),
    # Authorization header values: bearer tokens and basic credentials.
    (re.compile(r"(?i)\b(bearer|basic)(\s+)[A-Za-z0-9._~+/=-]+"), r"\1\2" + MASK, ("bearer", "basic")),
    # Passwords in URLs: scheme://user:password@host.
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s:/@]*:)[^\s@/]+@"), r"\1" + MASK + "@", ("://",)),
    # key=value and "key": "value" pairs whose key names a secret.
    (re.compile(r"""(?i)\b(password|passwd|pwd|secret|client_secret|api[_-]?key|access[_-]?token"""
                r"""|refresh[_-]?token|token|private[_-]?key)(["']?\s*[=:]\s*["']?)([^\s"'&,;}]+)"""),
     r"\1\2" + MASK, ("pass", "pwd", "secret", "api", "token", "key")),
)

_QUERY_VALUE = re.compile(r"([?&][^=\s&#\"]+=)[^&\s#\"]+")


def mask_query_values(text: str) -> str:
    """Every value of every URL query string in `text` masked: `/p?key=***&sig=***`."""
    return _QUERY_VALUE.sub(r"\1" + MASK, text) if "?" in text else text


# Shorter values would mask innocent text and are not meaningful secrets anyway.
MIN_KNOWN_SECRET = 8


class Redactor:
    """Masks secret-shaped text and any secret value it has been told about."""

    def __init__(self, known: Iterable[str | None] = ()):
        self._lock = threading.Lock()
        self._known: tuple[str, ...] = ()
        for value in known:
            self.add(value)

    def add(self, value: str | None) -> None:
        if not value or len(value) < MIN_KNOWN_SECRET or value in self._known:
            return
        with self._lock:
            # Longest first so a secret containing another is masked whole. Swapped, never
            # mutated, so other threads keep redacting while a value is added.
            self._known = tuple(sorted({*self._known, value}, key=len, reverse=True))

    def __call__(self, text: str) -> str:
        if not text:
            return text
        for value in self._known:
            if value in text:
                text = text.replace(value, MASK)
        lowered = text.lower()
        for pattern, replacement, fragments in _PATTERNS:
            if any(fragment in lowered for fragment in fragments):
                text = pattern.sub(replacement, text)
                lowered = text.lower()
        return text


# One per process: settings register their secret values at start-up (see logs.configure).
redact = Redactor()


def secrets_in_settings(settings: dict, schema_properties: dict) -> list[str]:
    """The values of every setting the manifest marks secret, and the store URL's password."""
    from sqlalchemy.engine import make_url

    values: list[str] = []
    for name, spec in schema_properties.items():
        if spec.get("x-secret") and settings.get(name):
            value = settings[name]
            values.extend(value if isinstance(value, list) else [value])
    url = settings.get("database_url")
    if url:
        try:
            password = make_url(url).password
        except Exception:  # an unparsable URL has no password to protect here
            password = None
        if password:
            values.append(str(password))
    return values
