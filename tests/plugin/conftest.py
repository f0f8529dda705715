"""Fixtures shared by the plugin tests."""
from __future__ import annotations

import pytest

from plugin.jobs import registry


@pytest.fixture
def isolated_registry():
    """Job kinds and planners as the built-in module registers them; test fakes removed after."""
    import plugin.jobs.builtin  # noqa: F401  (registers reconcile and the prune kinds)
    state = registry.snapshot()
    # Whatever other tests imported (the predictions, audiences and campaigns kinds) is set
    # aside, so a test sees the same registry alone or in the whole suite.
    for kind, function in state[0].items():
        if not function.__module__.startswith("plugin.jobs."):
            registry.unregister(kind)
    yield registry
    registry.restore(state)
