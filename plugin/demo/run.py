"""`likely demo`: upgrade the store, load the demo data, train and score the demo prediction."""
from __future__ import annotations

import sys
from typing import Callable

from sqlalchemy import Engine

from plugin import workspaces
from plugin.demo import DEMO_PREDICTION, data_end, load
from plugin.errors import NotFound
from plugin.predictions import definitions, scoring, training
from plugin.store import transaction
from plugin.store.migrate import upgrade

DEMO_KEY_LABEL = "demo"


def run_demo(engine: Engine, settings: dict, users: int, seed: int = 7,
             echo: Callable[[str], None] = print) -> dict:
    """Everything `likely demo` does before serving; safe to run again (nothing is duplicated)."""
    from tqdm import tqdm

    upgrade(settings["database_url"])
    workspace = workspaces.ensure(engine, workspaces.DEFAULT)
    with tqdm(unit=" events", unit_scale=True, desc="loading demo data", file=sys.stderr) as bar:
        loaded = load(engine, workspace.id, users, seed, progress=bar.update)
    echo(f"demo data: {users} users, {loaded['events']} events ({loaded['written']} new)")
    with transaction(engine) as conn:
        try:
            prediction = definitions.find(conn, workspace.id, DEMO_PREDICTION["name"])
        except NotFound:
            prediction = definitions.create(conn, workspace.id, dict(DEMO_PREDICTION),
                                            settings["max_active_predictions"])
    as_of = data_end(engine, workspace.id)
    options = training.TrainingOptions(min_positives=settings["min_positives"],
                                       min_negatives=settings["min_negatives"])
    model_id = training.train(engine, prediction, as_of, options)
    with engine.connect() as conn:
        prediction = definitions.get(conn, workspace.id, prediction.id)
        from plugin.predictions import models
        model = models.load(conn, model_id)
    summary = scoring.score(engine, prediction, as_of)
    m = model.metrics
    echo(f'"{prediction.name}" model v{model.version}: Prediction Quality {m["prediction_quality"]:.1f} '
         f'({m["quality_band"]}), AUC {m["auc"]:.3f}')
    users_by_category = ", ".join(f"{k} {v}" for k, v in summary["categories"]["users"].items())
    echo(f"scored {summary['users_scored']} users: {users_by_category}")
    page_key, revoked = (None, 0) if settings.get("api_keys") else _demo_api_key(engine, workspace)
    return {"prediction_id": prediction.id, "model_id": model_id, "run": summary, "api_key": page_key,
            "revoked_keys": revoked}


def _demo_api_key(engine, workspace: workspaces.Workspace) -> tuple[str, int]:
    """A fresh key for the page and API when none is configured, and how many earlier demo keys
    it revoked (running the demo again never piles up live keys; the caller says so)."""
    key = workspaces.new_api_key()
    revoked = workspaces.replace_api_key(engine, workspace, key, DEMO_KEY_LABEL)
    return key, revoked
