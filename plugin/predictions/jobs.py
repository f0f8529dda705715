"""The predictions' job kinds for the scheduler: rescore, retrain and backtest."""
from __future__ import annotations

import os
import time
from typing import Any

from sqlalchemy import Engine

from plugin import settings
from plugin.jobs import register
from plugin.predictions import backtest, definitions, scoring, training


def _prediction(engine: Engine, workspace_id: int, prediction_id: int) -> Any:
    with engine.connect() as conn:
        return definitions.get(conn, workspace_id, prediction_id)


def _options() -> training.TrainingOptions:
    # The scheduler process reads the same settings (environment) as the web app.
    values = settings.load(os.path.join(os.getcwd(), "instance"))
    return training.TrainingOptions(min_positives=values["min_positives"],
                                     min_negatives=values["min_negatives"])


@register("rescore")
def rescore(engine: Engine, *, workspace_id: int, prediction_id: int) -> dict[str, int]:
    summary = scoring.score(engine, _prediction(engine, workspace_id, prediction_id), int(time.time()))
    return {"users_scored": int(summary.get("users_scored", 0))}


@register("retrain")
def retrain(engine: Engine, *, workspace_id: int, prediction_id: int) -> dict[str, int]:
    """Train a new model version, then rescore with it so targeting uses it at once."""
    prediction = _prediction(engine, workspace_id, prediction_id)
    model_id = training.train(engine, prediction, int(time.time()), _options())
    summary = scoring.score(engine, _prediction(engine, workspace_id, prediction_id), int(time.time()))
    return {"model_id": model_id, "users_scored": int(summary.get("users_scored", 0))}


@register("backtest")
def run_backtest(engine: Engine, *, workspace_id: int, prediction_id: int) -> dict[str, int]:
    """Backtest every scoring run whose window has closed (none is a normal, quiet day)."""
    results = backtest.run(engine, _prediction(engine, workspace_id, prediction_id), int(time.time()))
    return {"backtests": len(results)}
