"""The predictions' job kinds for the scheduler: rescore, retrain and backtest."""
from __future__ import annotations

import logging
import time
from typing import Any, Iterable

from sqlalchemy import Connection, Engine

from plugin import settings
from plugin.errors import LikelyError
from plugin.jobs import JobSpec, Schedule, register, register_planner
from plugin.jobs.plan import every
from plugin.predictions import backtest, definitions, scoring, training, trainings

log = logging.getLogger(__name__)

# A new prediction waits at most this long for its first training to start.
TRAINING_SWEEP_SECONDS = 60


def _prediction(engine: Engine, workspace_id: int, prediction_id: int) -> Any:
    with engine.connect() as conn:
        return definitions.get(conn, workspace_id, prediction_id)


def _options() -> training.TrainingOptions:
    # The scheduler process reads the same settings (environment) as the web app.
    values = settings.current()
    return training.TrainingOptions(min_positives=values["min_positives"],
                                     min_negatives=values["min_negatives"])


@register("rescore")
def rescore(engine: Engine, *, workspace_id: int, prediction_id: int) -> dict[str, int]:
    """Rescore with the current model; before the first model (still training) there is nothing to do."""
    prediction = _prediction(engine, workspace_id, prediction_id)
    if prediction.current_model_id is None:
        return {"users_scored": 0, "waiting_for_first_model": 1}
    summary = scoring.score(engine, prediction, int(time.time()))
    return {"users_scored": int(summary.get("users_scored", 0))}


@register("train_queued")
def train_queued(engine: Engine) -> dict[str, int]:
    """Run the trainings asked for (a new prediction's first one), each followed by a scoring run."""
    return run_queued(engine, _options())


def training_queue_job(conn: Connection, schedule: Schedule) -> Iterable[JobSpec]:
    """One system job sweeps the queue for every workspace (a claim per training keeps it once)."""
    yield JobSpec("train_queued", "train_queued", every(TRAINING_SWEEP_SECONDS, "train_queued"))


register_planner("predictions_training_queue", training_queue_job, replace=True)


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


def run_queued(engine: Engine, options: Any, now_ts: int | None = None) -> dict[str, int]:
    """Train (then score) every claimed training; return how many ended in each state."""
    now_ts = int(time.time()) if now_ts is None else now_ts
    counts = dict.fromkeys((trainings.READY, trainings.REFUSED, trainings.FAILED), 0)
    for training_id, workspace_id, prediction_id in trainings.claim(engine, now_ts):
        try:
            with engine.connect() as conn:
                prediction = definitions.get(conn, workspace_id, prediction_id)
            model_id = training.train(engine, prediction, now_ts, options)
            with engine.connect() as conn:
                prediction = definitions.get(conn, workspace_id, prediction_id)
            summary = scoring.score(engine, prediction, now_ts)
        except LikelyError as error:
            state = trainings.REFUSED if error.code == "not_enough_data" else trainings.FAILED
            extra = error.details if isinstance(error.details, dict) else {}
            trainings.finish(engine, training_id, state,
                             details={"code": error.code, "message": error.message, **extra})
            counts[state] += 1
            continue
        except Exception as error:  # the reason is kept; the traceback goes to the redacted log
            log.exception("training %s of prediction %s failed", training_id, prediction_id)
            trainings.finish(engine, training_id, trainings.FAILED,
                             details={"code": "training_failed", "message": f"{type(error).__name__}: {error}"[:500]})
            counts[trainings.FAILED] += 1
            continue
        trainings.finish(engine, training_id, trainings.READY, model_id,
                         {"users_scored": int(summary.get("users_scored", 0))})
        counts[trainings.READY] += 1
    return counts
