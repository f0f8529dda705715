"""The CDNOW purchase data (Fader–Hardie–Lee 2005): 23,570 customers' CD purchases, 1997-01 to 1998-06.

The file ships inside the `lifetimes` wheel (`pip install -e '.[bench]'`), so nothing is
downloaded at run time. It is located without importing lifetimes (which needs pandas).
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

DAY = 86_400
FILE = "datasets/CDNOW_master.txt"


def data_file() -> Path:
    spec = importlib.util.find_spec("lifetimes")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("the CDNOW data ships in the lifetimes package: pip install -e '.[bench]'")
    return Path(list(spec.submodule_search_locations)[0]) / FILE


@dataclass
class Purchases:
    customer: np.ndarray   # str ids as in the file, e.g. "00001"
    ts: np.ndarray         # int64 epoch seconds, midnight UTC of the purchase day
    cds: np.ndarray        # int64
    dollars: np.ndarray    # float64
    dates: list[str]       # YYYYMMDD as in the file

    def customer_index(self) -> tuple[np.ndarray, np.ndarray]:
        """(distinct customers, index of each purchase's customer)."""
        return np.unique(self.customer, return_inverse=True)


def load(path: Path | None = None) -> Purchases:
    """Every purchase row (identical rows included: two equal purchases on one day are real)."""
    rows = (path or data_file()).read_text().split("\n")[1:]
    parts = [r.split() for r in rows if r.strip()]
    dates = [p[1] for p in parts]
    ts = np.array([int(datetime.strptime(d, "%Y%m%d").replace(tzinfo=timezone.utc).timestamp()) for d in dates],
                  dtype=np.int64)
    return Purchases(customer=np.array([p[0] for p in parts]), ts=ts,
                     cds=np.array([int(p[2]) for p in parts], dtype=np.int64),
                     dollars=np.array([float(p[3]) for p in parts]), dates=dates)


def write_events_csv(purchases: Purchases, path: Path) -> None:
    """The purchases as `likely import events` reads them; dates stay YYYYMMDD as in the source."""
    with open(path, "w") as out:
        out.write("user_id,event,timestamp,number_of_cds,dollar_value\n")
        for c, d, n, v in zip(purchases.customer, purchases.dates, purchases.cds, purchases.dollars):
            out.write(f"{c},purchase,{d},{n},{v}\n")


def utc(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp())
