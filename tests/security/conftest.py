"""Security tests replay attacks against the real app; each leaves the outbound policy as it was."""
from __future__ import annotations

import pytest

from connectors import net
from tests.plugin.campaign_data import fresh_connectors  # noqa: F401  (autouse: no pooled connectors)


@pytest.fixture(autouse=True)
def default_outbound_policy():
    """The app sets the process's outbound policy from its settings; never let one leak on."""
    yield
    net.configure()
