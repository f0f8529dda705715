"""A `deliver_outbox` kind for `likely worker` process tests (LIKELY_JOB_MODULES): it notes
each batch in the file LIKELY_TEST_WORKER_MARKER names and claims nothing."""
from __future__ import annotations

import os
from pathlib import Path

from plugin.jobs import register


def deliver_outbox(engine, **_params) -> dict:
    with Path(os.environ["LIKELY_TEST_WORKER_MARKER"]).open("a") as out:
        out.write("batch\n")
    return {"claimed": 0}


register("deliver_outbox", deliver_outbox, replace=True)  # stands in for the campaigns outbox
