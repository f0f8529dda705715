"""`likely worker`: the delivery loop around the `deliver_outbox` job kind."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from click.testing import CliRunner

from plugin.cli import cli
from plugin.jobs import worker
from tests.plugin.jobs_support import wait_until

ROOT = Path(__file__).resolve().parents[2]
LIKELY = str(Path(sys.executable).parent / "likely")


class Outbox:
    """A stand-in for plugin/campaigns' deliver_outbox: hands out the batches it is given."""

    def __init__(self, batches):
        self.batches = list(batches)
        self.calls = 0

    def __call__(self, engine):
        self.calls += 1
        step = self.batches.pop(0) if self.batches else 0
        if isinstance(step, Exception):
            raise step
        return {"claimed": step, "sent": step}


def test_the_loop_goes_straight_on_while_there_is_work_and_waits_when_there_is_none(engine, isolated_registry):
    outbox = Outbox([5, 3, 0, 2, 0])
    isolated_registry.register("deliver_outbox", outbox)
    waits = []
    totals = worker.run(engine, poll_seconds=2.5, stop=threading.Event(), max_iterations=5,
                        sleep=lambda seconds: waits.append(seconds))
    assert totals == {"iterations": 5, "claimed": 10, "errors": 0}
    assert waits == [2.5, 2.5]  # only after the empty claims


def test_an_error_backs_off_and_the_loop_carries_on(engine, isolated_registry):
    outbox = Outbox([RuntimeError("db gone: postgresql://u:pw-secret@h/db"), RuntimeError("still"), 4, 0])
    isolated_registry.register("deliver_outbox", outbox)
    waits = []
    totals = worker.run(engine, poll_seconds=1, stop=threading.Event(), max_iterations=4, sleep=waits.append)
    assert totals["errors"] == 2 and totals["claimed"] == 4
    assert waits == [1, 2, 1]  # doubled after the second error, back to the poll after success


def test_stop_is_honoured_after_the_batch_in_hand(engine, isolated_registry):
    stop = threading.Event()

    def deliver(engine):
        stop.set()  # SIGTERM arrives while a batch is being delivered
        return {"claimed": 7}
    isolated_registry.register("deliver_outbox", deliver)
    assert worker.run(engine, poll_seconds=1, stop=stop) == {"iterations": 1, "claimed": 7, "errors": 0}


def test_the_worker_command_refuses_to_start_without_an_outbox(database_url, isolated_registry, monkeypatch):
    monkeypatch.setenv("LIKELY_DATABASE_URL", database_url)
    # A build whose campaigns area (the outbox) is missing or failed to register its kinds.
    monkeypatch.setattr(isolated_registry, "AREA_MODULES", ("plugin.jobs.builtin",))
    isolated_registry.unregister("deliver_outbox")
    result = CliRunner().invoke(cli, ["worker"])
    assert result.exit_code == 1 and "no 'deliver_outbox' job kind is registered" in result.output


def test_the_worker_process_polls_and_stops_cleanly_on_sigterm(database_url, tmp_path):
    marker = tmp_path / "batches"
    env = {**os.environ, "LIKELY_DATABASE_URL": database_url, "LIKELY_JOB_MODULES": "tests.plugin.fake_outbox",
           "LIKELY_TEST_WORKER_MARKER": str(marker), "PYTHONPATH": str(ROOT), "LIKELY_OUTBOX_LEASE_SECONDS": "9"}
    log = tmp_path / "worker.log"
    process = subprocess.Popen([LIKELY, "worker", "--poll-seconds", "0.05"], env=env, cwd=tmp_path,
                               stdout=subprocess.DEVNULL, stderr=log.open("w"))
    try:
        wait_until(lambda: marker.exists() and len(marker.read_text().splitlines()) >= 3)
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=30)
    assert code == 0
    assert set(marker.read_text().splitlines()) == {"batch lease_seconds=9"}  # the short lease setting
    messages = [json.loads(line)["message"] for line in log.read_text().splitlines() if line.startswith("{")]
    assert messages[-1] == "worker stopped" and any("SIGTERM" in m for m in messages)
