"""Connectors kept from one delivery pass to the next (per thread), rebuilt when settings change.

Building a connector is not free — FCM and Google parse a service-account key and fetch an
OAuth token — and a kept connector keeps its HTTP connections alive. A workspace's set is
replaced as soon as its connector settings differ from those it was built with.
"""
from __future__ import annotations

import hashlib
import json
import threading
from contextlib import contextmanager
from typing import Any, Iterator, Mapping

import connectors

_local = threading.local()


def _close(active: Mapping[str, connectors.Connector]) -> None:
    for connector in active.values():
        connector.close()


@contextmanager
def connectors_for(workspace_id: int, settings: Mapping[str, Any],
                   options: Mapping[str, Any] | None = None) -> Iterator[dict[str, connectors.Connector]]:
    """The workspace's enabled connectors; ConfigurationError if its settings are invalid.

    With `options` (an injected clock or sleep) the set is built for this pass and closed after.
    """
    known = {k: v for k, v in settings.items() if k in connectors.CONNECTORS}
    if options:
        active = connectors.enabled(known, **options)
        try:
            yield active
        finally:
            _close(active)
        return
    cache: dict[int, tuple[str, dict]] = _local.__dict__.setdefault("cache", {})
    fingerprint = hashlib.sha256(json.dumps(known, sort_keys=True, default=str).encode()).hexdigest()
    entry = cache.get(workspace_id)
    if entry is None or entry[0] != fingerprint:
        if entry is not None:
            _close(entry[1])
            del cache[workspace_id]
        entry = (fingerprint, connectors.enabled(known))
        cache[workspace_id] = entry
    yield entry[1]


def clear() -> None:
    """Close and forget this thread's connectors."""
    for _, active in getattr(_local, "cache", {}).values():
        _close(active)
    _local.__dict__.pop("cache", None)
