"""Synthetic shop behaviour for the demo: seeded, vectorised, realistic enough to learn from.

Each user has a hidden propensity to buy and a hidden activity level, neither stored. Activity
drifts week to week (a random walk), so recent behaviour says more than old behaviour; some
users churn and go quiet; weekends and a mid-period promotion raise traffic. A session starts
with `session_start`, views items, sometimes searches, adds to cart and buys (with a `value`).
Email and push campaigns reach users who consented, and the engaged open them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np

DAY = 86_400
COUNTRIES = np.array(["US", "GB", "DE", "FR", "BR", "IN", "ES", "CA"])
COUNTRY_WEIGHTS = np.array([0.32, 0.12, 0.12, 0.1, 0.1, 0.1, 0.07, 0.07])
COUNTRY_EFFECT = np.array([0.25, 0.15, 0.1, 0.0, -0.3, -0.45, -0.1, 0.2])
LANGUAGE = {"US": "en", "GB": "en", "DE": "de", "FR": "fr", "BR": "pt", "IN": "en", "ES": "es", "CA": "en"}


@dataclass
class DemoData:
    users: list[dict]        # writer rows for upsert_users
    user_index: np.ndarray   # per event: index into users
    event: np.ndarray        # per event: name
    ts: np.ndarray           # per event: epoch seconds
    value: np.ndarray        # per event: purchase value (NaN otherwise)

    def event_rows(self, batch: int = 20_000) -> Iterator[list[dict]]:
        """Writer rows in batches. Event ids are deterministic, so loading twice adds nothing."""
        external = [u["user_id"] for u in self.users]
        for start in range(0, len(self.ts), batch):
            stop = min(start + batch, len(self.ts))
            rows = []
            for i in range(start, stop):
                row = {"user_id": external[self.user_index[i]], "event": self.event[i],
                       "timestamp": int(self.ts[i]), "event_id": f"demo-{i}", "properties": None}
                if not np.isnan(self.value[i]):
                    row["properties"] = {"value": float(self.value[i]), "currency": "USD"}
                rows.append(row)
            yield rows


def generate(users: int, end_ts: int, days: int = 150, seed: int = 7) -> DemoData:
    """`users` users' behaviour over the `days` days before `end_ts` (a UTC midnight)."""
    rng = np.random.default_rng(seed)
    start_ts = end_ts - days * DAY
    propensity = rng.normal(size=users)                      # hidden: how much a user buys
    activity = rng.normal(size=users)                        # hidden: how often a user comes
    country = rng.choice(len(COUNTRIES), size=users, p=COUNTRY_WEIGHTS)
    signup = np.clip(rng.integers(-240, days - 7, size=users), 0, None)
    churn = np.where(rng.random(users) < 0.35, rng.integers(10, days + 90, size=users), days + 1)
    weeks = days // 7 + 1
    drift = np.cumsum(rng.normal(scale=0.35, size=(users, weeks)), axis=1) * 0.8

    day = np.arange(days)
    weekday = ((start_ts // DAY + day + 3) % 7)  # 0 = Monday
    season = np.where(weekday >= 5, 1.25, 1.0) * np.where((day > days - 50) & (day < days - 40), 1.5, 1.0)
    alive = (day[None, :] >= signup[:, None]) & (day[None, :] < churn[:, None])
    rate = np.exp(-3.4 + 0.55 * activity + 0.25 * propensity)[:, None] * np.exp(drift[:, day // 7]) * season
    sessions = rng.poisson(rate * alive)

    session_user, session_day = np.nonzero(sessions)
    repeats = sessions[session_user, session_day]
    session_user, session_day = np.repeat(session_user, repeats), np.repeat(session_day, repeats)
    hour = np.clip(rng.normal(19, 3.5, size=len(session_user)), 0, 23.9)
    session_ts = start_ts + session_day * DAY + (hour * 3600).astype(np.int64)
    z = propensity[session_user]
    promo = season[session_day] > 1.3

    views = 1 + rng.poisson(np.exp(0.4 + 0.2 * z))
    searched = rng.random(len(z)) < 0.35
    carted = rng.random(len(z)) < _sigmoid(-1.7 + 0.7 * z + 0.25 * np.log(views))
    bought = carted & (rng.random(len(z)) < _sigmoid(-0.2 + 0.6 * z + COUNTRY_EFFECT[country[session_user]]
                                                     + 0.5 * promo))
    parts = [(session_user, np.full(len(z), "session_start"), session_ts, None)]
    view_session = np.repeat(np.arange(len(z)), views)
    view_step = np.arange(len(view_session)) - np.repeat(np.cumsum(views) - views, views)
    parts.append((session_user[view_session], np.full(len(view_session), "view_item"),
                  session_ts[view_session] + 60 * (1 + view_step), None))
    parts.append((session_user[searched], np.full(searched.sum(), "search"), session_ts[searched] + 30, None))
    parts.append((session_user[carted], np.full(carted.sum(), "add_to_cart"),
                  session_ts[carted] + 60 * (views[carted] + 1), None))
    value = np.round(rng.lognormal(3.1 + 0.25 * z[bought], 0.6), 2)
    parts.append((session_user[bought], np.full(bought.sum(), "purchase"),
                  session_ts[bought] + 60 * (views[bought] + 3), value))
    parts.extend(_campaign_opens(rng, users, propensity, activity, signup, churn, start_ts, days))

    attributes = _attributes(rng, users, propensity, country)
    user_rows = [{"user_id": f"demo-user-{i:06d}", "attributes": attributes[i]} for i in range(users)]
    user_index = np.concatenate([p[0] for p in parts])
    ts = np.concatenate([p[2] for p in parts])
    values = np.concatenate([p[3] if p[3] is not None else np.full(len(p[0]), np.nan) for p in parts])
    order = np.lexsort((ts, user_index))
    names = np.concatenate([p[1] for p in parts])
    keep = ts[order] < end_ts
    order = order[keep]
    return DemoData(users=user_rows, user_index=user_index[order], event=names[order], ts=ts[order],
                    value=values[order])


def _campaign_opens(rng, users, propensity, activity, signup, churn, start_ts, days):
    """Weekly email and push campaigns; opens only from users who joined and have not churned."""
    sends = np.arange(3, days, 7)
    engaged = _sigmoid(-2.6 + 0.5 * activity + 0.3 * propensity)
    out = []
    for name, reach, hour in (("open_email", 0.7, 10), ("open_push", 0.45, 18)):
        reachable = rng.random(users) < reach
        opened = (rng.random((users, len(sends))) < engaged[:, None]) & reachable[:, None]
        opened &= (sends[None, :] >= signup[:, None]) & (sends[None, :] < churn[:, None])
        u, k = np.nonzero(opened)
        ts = start_ts + sends[k] * DAY + hour * 3600 + rng.integers(0, 7200, size=len(u))
        out.append((u, np.full(len(u), name), ts, None))
    return out


def _attributes(rng, users, propensity, country) -> list[dict]:
    has_email = rng.random(users) < 0.85
    email_consent = has_email & (rng.random(users) < 0.7)
    has_push = rng.random(users) < 0.5
    push_consent = has_push & (rng.random(users) < 0.8)
    loyalty = rng.random(users) < _sigmoid(-1.2 + 0.8 * propensity)
    age = np.clip(rng.normal(36 + 3 * propensity, 11), 18, 85).astype(int)
    rows = []
    for i in range(users):
        code = str(COUNTRIES[country[i]])
        row = {"country": code, "language": LANGUAGE[code], "email_consent": bool(email_consent[i]),
               "push_consent": bool(push_consent[i]), "sms_consent": False, "loyalty_member": bool(loyalty[i]),
               "age": int(age[i])}
        if has_email[i]:
            row["email"] = f"demo-user-{i:06d}@example.com"
        if has_push[i]:
            row["push_tokens"] = [f"demo-push-token-{i:06d}"]
        rows.append(row)
    return rows


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))
