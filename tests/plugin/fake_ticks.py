"""Job kinds for tests that run real `likely` processes: loaded with LIKELY_JOB_MODULES, exactly
as an operator adds job kinds. Behaviour is steered by test-only environment variables."""
from __future__ import annotations

import os
import time

from plugin.jobs import JobSpec, register, register_planner
from plugin.jobs.plan import ANCHOR, every


def tick(engine, **_params) -> dict:
    # Long enough that the other scheduler fires while this run holds its lease.
    time.sleep(float(os.environ.get("LIKELY_TEST_TICK_SECONDS", "0.2")))
    return {"ticked": 1}


def tick_plan(conn, schedule):
    yield JobSpec("tick", "tick", every(1, "tick", start=ANCHOR))


register("tick", tick)
register_planner("tick", tick_plan)
