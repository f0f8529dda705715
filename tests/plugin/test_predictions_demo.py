"""The demo: realistic synthetic data, a demo prediction with sane quality, `likely demo` idempotent."""
from __future__ import annotations

import re
import socket

import numpy as np
from click.testing import CliRunner
from sqlalchemy import func, select

from plugin.cli import cli
from plugin.demo.generator import generate
from plugin.predictions import models
from plugin.store.tables import events, prediction_models, predictions, users
from plugin.workspaces import workspace_for_api_key
from tests.plugin.predictions_fixtures import END

DAY = 86_400


def test_generated_behaviour_looks_like_a_shop():
    data = generate(3_000, END, seed=1)
    names, counts = np.unique(data.event, return_counts=True)
    share = dict(zip(names, counts / counts.sum()))
    assert set(share) == {"session_start", "view_item", "search", "add_to_cart", "purchase", "open_email",
                          "open_push"}
    assert share["view_item"] > share["add_to_cart"] > share["purchase"] > 0
    assert np.all(data.ts < END) and data.ts.min() >= END - 150 * DAY
    assert np.all(data.value[data.event == "purchase"] > 0) and np.all(np.isnan(data.value[data.event != "purchase"]))
    weekday = (data.ts // DAY + 3) % 7
    assert np.mean(weekday >= 5) > 2 / 7  # weekends are busier
    last_seen = np.full(3_000, -1)
    np.maximum.at(last_seen, data.user_index, data.ts)
    assert np.mean(last_seen < END - 30 * DAY) > 0.1  # churners go quiet
    attributes = [u["attributes"] for u in data.users]
    assert {"country", "language", "email_consent", "push_consent"} <= set(attributes[0])
    assert 0.7 < np.mean(["email" in a for a in attributes]) < 0.95
    assert 0.3 < np.mean(["push_tokens" in a for a in attributes]) < 0.7
    again = generate(3_000, END, seed=1)
    assert np.array_equal(again.ts, data.ts) and again.users == data.users  # seeded


def test_demo_quality_is_neither_trivial_nor_useless(trained):
    """The trained store is the demo data with the demo prediction's goal and window."""
    with trained.engine.connect() as conn:
        metrics = models.current(conn, trained.prediction()).metrics
    assert 20 <= metrics["prediction_quality"] <= 90
    assert 0.65 <= metrics["auc"] <= 0.95


def test_likely_demo_loads_trains_scores_and_is_idempotent(monkeypatch, tmp_path):
    url = f"sqlite:///{tmp_path}/demo.sqlite"  # a fresh file: the demo creates the schema itself
    monkeypatch.setenv("LIKELY_DATABASE_URL", url)
    monkeypatch.delenv("LIKELY_API_KEYS", raising=False)
    served = []
    monkeypatch.setattr("plugin.serving.run_gunicorn", lambda host, port, workers: served.append((host, port)))
    first = CliRunner().invoke(cli, ["demo", "--users", "2000", "--no-serve"], catch_exceptions=False)
    assert first.exit_code == 0, first.output
    assert "Prediction Quality" in first.output and served == []
    from plugin.store import make_engine
    engine = make_engine(url)
    with engine.connect() as conn:
        before = conn.execute(select(func.count()).select_from(events)).scalar()
        known = conn.execute(select(func.count()).select_from(users)).scalar()
    port = _free_port()
    second = CliRunner().invoke(cli, ["demo", "--users", "2000", "--port", str(port)], catch_exceptions=False)
    assert second.exit_code == 0, second.output
    assert served == [("127.0.0.1", port)]
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(events)).scalar() == before > 50_000
        assert conn.execute(select(func.count()).select_from(users)).scalar() == known == 2_000
        found = conn.execute(select(predictions.c.name, predictions.c.status)).all()
        versions = conn.execute(select(prediction_models.c.version)).scalars().all()
        prediction_id = conn.execute(select(predictions.c.id)).scalar_one()
        # Each run prints a page link and a key that signs in; the previous run's key is
        # revoked, and the second run says so.
        first_key, second_key = (_printed_key(run.output) for run in (first, second))
        assert workspace_for_api_key(conn, first_key) is None
        assert workspace_for_api_key(conn, second_key).slug == "default"
    engine.dispose()
    assert found == [("purchase within 14 days", "demo")] and sorted(versions) == [1, 2]
    assert f"http://127.0.0.1:{port}/login?next=/predictions/{prediction_id}" in second.output
    assert "previous run no longer works" not in first.output
    assert "previous run no longer works" in second.output


def test_likely_demo_refuses_a_busy_port_before_any_work(monkeypatch, tmp_path):
    """A busy port is one line naming --port, said before loading or training anything."""
    database = tmp_path / "demo.sqlite"
    monkeypatch.setenv("LIKELY_DATABASE_URL", f"sqlite:///{database}")
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        result = CliRunner().invoke(cli, ["demo", "--users", "2000", "--port", str(port)])
    assert result.exit_code != 0
    assert result.output.strip().count("\n") == 0 and "--port" in result.output and str(port) in result.output
    assert not database.exists()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _printed_key(output: str) -> str:
    return re.search(r"demo API key (\S+),", output).group(1)

