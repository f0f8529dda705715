"""The job registry: kinds by name, registered by each area's module."""
from __future__ import annotations

import pytest

from plugin.jobs import registry


def test_kinds_are_registered_and_called_with_workspace_and_params(isolated_registry):
    @isolated_registry.register("refresh_segments")
    def refresh(engine, *, workspace_id, only=None):
        return {"workspace": workspace_id, "only": only}
    assert isolated_registry.get("refresh_segments") is refresh
    assert registry.run_kind("refresh_segments", "engine", 3, {"only": 9}) == {"workspace": 3, "only": 9}


def test_a_kind_cannot_be_claimed_twice_by_accident(isolated_registry):
    isolated_registry.register("rescore", lambda engine, **p: {})
    with pytest.raises(ValueError, match="already registered"):
        isolated_registry.register("rescore", lambda engine, **p: {})
    isolated_registry.register("rescore", lambda engine, **p: {"v": 2}, replace=True)
    assert registry.run_kind("rescore", "engine", None, {}) == {"v": 2}


def test_an_unknown_kind_is_a_clear_error(isolated_registry):
    with pytest.raises(registry.UnknownJobKind, match="no job kind 'nope'"):
        isolated_registry.get("nope")


def test_built_in_kinds_are_registered_and_missing_areas_are_skipped(isolated_registry):
    loaded = registry.load_job_modules()
    assert "plugin.jobs.builtin" in loaded
    assert {"reconcile", "prune_receipts", "prune_job_runs"} <= set(registry.kinds())
    # Areas not merged in this build import as nothing; those that exist are loaded.
    for area in ("plugin.predictions.jobs", "plugin.audiences.jobs", "plugin.campaigns.jobs"):
        try:
            __import__(area)
        except ModuleNotFoundError:
            assert area not in loaded


def test_a_missing_extra_module_is_an_error_not_a_silent_skip(isolated_registry):
    with pytest.raises(ModuleNotFoundError):
        registry.load_job_modules(["tests.plugin.no_such_job_module"])
    assert "tests.plugin.fake_ticks" in registry.load_job_modules(["tests.plugin.fake_ticks"])
    assert registry.is_registered("tick")
