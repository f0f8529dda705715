"""Fixtures shared by the plugin tests."""
from __future__ import annotations

import pytest

from plugin.jobs import registry


@pytest.fixture
def isolated_registry():
    """Job kinds and planners as the built-in module registers them; test fakes removed after."""
    import plugin.jobs.builtin  # noqa: F401  (registers reconcile and the prune kinds)
    state = registry.snapshot()
    yield registry
    registry.restore(state)
