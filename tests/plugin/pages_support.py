"""Helpers for the prediction page tests: signing in, the page's CSRF token, the figures' formats."""
from __future__ import annotations

import re
import time
from decimal import ROUND_HALF_UP, Decimal

from plugin.api.page_auth import signed_link
from tests.helpers import WEBHOOK_SECRET

BASE = "https://likely.example"  # the session cookie is Secure: the test client sends it over https only


def link(next_path: str, workspace: str = "default", secret: str = WEBHOOK_SECRET) -> str:
    return signed_link(secret, workspace, int(time.time()) + 300, next_path)


def sign_in(client, next_path: str = "/predictions", workspace: str = "default", secret: str = WEBHOOK_SECRET):
    response = client.get(link(next_path, workspace, secret), base_url=BASE)
    assert response.status_code == 302, response.get_data(as_text=True)
    return response


def csrf_token(html: str) -> str:
    return re.search(r'<meta name="csrf-token" content="([^"]+)">', html).group(1)


def score_tree(prediction_id: int, low: float, high: float) -> dict:
    upper = {"lte": 100} if high >= 100 else {"lt": high}
    return {"filter": "event_likelihood_score", "prediction": prediction_id, "gte": low, **upper}


# How the page writes its figures (prediction.js); JavaScript's toFixed rounds the exact
# binary value half up, which Decimal(float) with ROUND_HALF_UP reproduces.
def _fixed(value: float, places: int) -> str:
    return str(Decimal(value).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP))


def shown_count(n: int) -> str:
    return f"{n:,}"


def shown_expected(x: float) -> str:
    return _fixed(x, 1) if x < 100 else f"{int(Decimal(x).quantize(Decimal(1), rounding=ROUND_HALF_UP)):,}"


def shown_percent(ratio: float | None) -> str:
    return "—" if ratio is None else _fixed(ratio * 100, 1) + " %"
