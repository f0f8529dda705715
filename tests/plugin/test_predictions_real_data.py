"""Predictions on real purchase data: the CDNOW CD purchases (23,570 customers, 1997–98).

The file ships inside the `lifetimes` wheel (the `bench` extra); without it these tests are
skipped. `bench/quality.py` runs the same data through the CLI at five dates beside BG/NBD and
LightGBM-RFM; this test keeps one date in the suite.
"""
from __future__ import annotations

import importlib.util
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from plugin.predictions import definitions, history, models, quality, scoring, training
from plugin.store import make_engine, transaction
from plugin.store.migrate import upgrade
from tests.plugin.predictions_fixtures import DAY, write

spec = importlib.util.find_spec("lifetimes")
DATA = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "CDNOW_master.txt" if spec else None
pytestmark = pytest.mark.skipif(DATA is None or not DATA.exists(),
                                reason="the CDNOW file ships in the lifetimes wheel: pip install -e '.[bench]'")
WINDOW = 60


def utc(day: str) -> int:
    return int(datetime.strptime(day, "%Y%m%d").replace(tzinfo=timezone.utc).timestamp())


@pytest.fixture(scope="module")
def cdnow(tmp_path_factory):
    rows = [line.split() for line in DATA.read_text().splitlines()[1:] if line.strip()]
    events = [{"user_id": c, "event": "purchase", "timestamp": d,
               "properties": {"number_of_cds": int(n), "dollar_value": float(v)}} for c, d, n, v in rows]
    url = f"sqlite:///{tmp_path_factory.mktemp('cdnow') / 'likely.sqlite'}"
    upgrade(url)
    engine = make_engine(url)
    from plugin.ingest.schemas import EventSchema
    write(engine, EventSchema(many=True).load(events))
    purchases = [(c, utc(d)) for c, d, _, _ in rows]
    yield engine, purchases
    engine.dispose()


def test_on_real_data_expected_conversions_hold_and_the_quality_interval_covers_the_forward_quality(cdnow):
    engine, purchases = cdnow
    as_of = utc("19980201")
    with transaction(engine) as conn:
        prediction = definitions.create(conn, 1, {"name": "cd", "goal_event": "purchase", "window_days": WINDOW,
                                                  "status": "preview"}, max_active=5)
    model_id = training.train(engine, prediction, as_of)
    with engine.connect() as conn:
        prediction = definitions.get(conn, 1, prediction.id)
        metrics = models.load(conn, model_id).metrics
    run = scoring.score(engine, prediction, as_of)
    from sqlalchemy import select

    from plugin.store.tables import users
    with engine.connect() as conn:
        ids, scores = history.read_all(conn, run["run_id"])
        external = dict(conn.execute(select(users.c.id, users.c.external_id)).all())
    bought = {c for c, ts in purchases if as_of < ts <= as_of + WINDOW * DAY}
    labels = np.array([external[int(i)] in bought for i in ids])
    assert len(ids) == 23_570                                  # every customer with history is scored
    gap_pp = 100 * (scores.mean() / 100 - labels.mean())
    assert abs(gap_pp) <= 1.5                                  # expected conversions are honest here
    forward = quality.lift_quality(labels, scores)
    low, high = metrics["prediction_quality_interval"]
    assert low <= forward <= high and forward > 55             # the test set's interval holds forward
