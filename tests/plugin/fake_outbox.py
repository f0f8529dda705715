"""A `deliver_outbox` kind for `likely worker` process tests (LIKELY_JOB_MODULES): it notes
each batch (with the lease it was given) in the file LIKELY_TEST_WORKER_MARKER names and
claims nothing."""
from __future__ import annotations

import os
from pathlib import Path

from plugin.jobs import register


def deliver_outbox(engine, **params) -> dict:
    with Path(os.environ["LIKELY_TEST_WORKER_MARKER"]).open("a") as out:
        out.write(f"batch lease_seconds={params.get('lease_seconds')}\n")
    return {"claimed": 0}


register("deliver_outbox", deliver_outbox, replace=True)  # stands in for the campaigns outbox
