"""The job registry: job kinds by name, and planners that say which jobs should exist.

A *job kind* is a function `run(engine, **params) -> dict[str, int]` (counts for the run log).
Per-workspace and per-prediction jobs receive `workspace_id=` and their params as keywords.
Each area registers its kinds from its own module, imported by `load_job_modules()`:

    # plugin/predictions/jobs.py
    from plugin.jobs import register
    register("rescore", rescore)      # rescore(engine, *, workspace_id, prediction_id) -> counts

A *planner* is a function `plan(conn, schedule) -> Iterable[JobSpec]` the reconciler calls to
learn which jobs should be scheduled; the built-in planners cover every kind in
`EXPECTED_KINDS`, so areas normally register kinds only.
"""
from __future__ import annotations

import importlib
import logging
from typing import Any, Callable, Iterable, Mapping

from sqlalchemy import Connection, Engine

log = logging.getLogger(__name__)

JobFunction = Callable[..., Mapping[str, Any]]
Planner = Callable[[Connection, Any], Iterable[Any]]

# The area modules whose import registers their job kinds; an area not built yet is skipped.
AREA_MODULES = (
    "plugin.jobs.builtin",
    "plugin.predictions.jobs",
    "plugin.audiences.jobs",
    "plugin.campaigns.jobs",
)

# Kinds the built-in planners schedule, and who implements them (for docs and start-up logs).
EXPECTED_KINDS = {
    "rescore": "plugin.predictions",
    "retrain": "plugin.predictions",
    "backtest": "plugin.predictions",
    "refresh_segments": "plugin.audiences",
    "run_campaigns": "plugin.campaigns",
    "writeback_scores": "plugin.campaigns",
    "deliver_outbox": "plugin.campaigns",
    "prune_receipts": "plugin.jobs",
    "prune_job_runs": "plugin.jobs",
    "reconcile": "plugin.jobs",
    "purge_uninstalled": "plugin.jobs",
}

_kinds: dict[str, JobFunction] = {}
_planners: dict[str, Planner] = {}


class UnknownJobKind(LookupError):
    """No module of this process registered the kind."""


def register(kind: str, fn: JobFunction | None = None, *, replace: bool = False):
    """Register `fn` as job kind `kind`; usable as `@register("kind")` too.

    Registering a different function under a taken name is an error unless `replace=True`
    (two areas claiming one kind is a bug, not a preference).
    """
    def add(function: JobFunction) -> JobFunction:
        existing = _kinds.get(kind)
        if existing is not None and existing is not function and not replace:
            raise ValueError(f"job kind {kind!r} is already registered by {existing.__module__}")
        _kinds[kind] = function
        return function
    return add(fn) if fn is not None else add


def unregister(kind: str) -> None:
    _kinds.pop(kind, None)


def get(kind: str) -> JobFunction:
    try:
        return _kinds[kind]
    except KeyError:
        raise UnknownJobKind(f"no job kind {kind!r} is registered in this process") from None


def kinds() -> list[str]:
    return sorted(_kinds)


def is_registered(kind: str) -> bool:
    return kind in _kinds


def register_planner(name: str, planner: Planner, *, replace: bool = False) -> Planner:
    """Add a planner (`plan(conn, schedule) -> Iterable[JobSpec]`) the reconciler consults."""
    if name in _planners and _planners[name] is not planner and not replace:
        raise ValueError(f"planner {name!r} is already registered")
    _planners[name] = planner
    return planner


def unregister_planner(name: str) -> None:
    _planners.pop(name, None)


def planners() -> dict[str, Planner]:
    return dict(_planners)


def snapshot() -> tuple[dict[str, JobFunction], dict[str, Planner]]:
    """The registry's state, for `restore` (tests register fakes and put things back)."""
    return dict(_kinds), dict(_planners)


def restore(state: tuple[dict[str, JobFunction], dict[str, Planner]]) -> None:
    _kinds.clear()
    _kinds.update(state[0])
    _planners.clear()
    _planners.update(state[1])


def load_job_modules(extra: Iterable[str] = ()) -> list[str]:
    """Import the area modules that exist and every `extra` module (LIKELY_JOB_MODULES).

    Returns the modules imported. An area that is not built yet is skipped; an error *inside*
    an existing module, or a missing extra module, is raised — a typo must not pass silently.
    """
    loaded = []
    for name in AREA_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as error:
            if error.name and (name == error.name or name.startswith(error.name + ".")):
                continue
            raise
        loaded.append(name)
    for name in extra:
        importlib.import_module(name)
        loaded.append(name)
    missing = sorted(kind for kind in EXPECTED_KINDS if kind not in _kinds)
    if missing:
        log.info("job kinds not implemented in this build (their jobs are not scheduled): %s",
                 ", ".join(missing))
    return loaded


def run_kind(kind: str, engine: Engine, workspace_id: int | None, params: Mapping[str, Any]) -> dict:
    """Call a kind's function the one way every caller does."""
    fn = get(kind)
    arguments = dict(params)
    if workspace_id is not None:
        arguments["workspace_id"] = workspace_id
    counts = fn(engine, **arguments)
    return dict(counts or {})
