"""Campaign results per tier: delivery counts, and — once a run's window has passed —
conversions in treatment vs control, the uplift with its 95 % confidence interval, and the
conversions the scores expected against those that happened.

Treatment is intention-to-treat: every user a message was planned for (sent, failed or dead
alike); control is every user held out. Both were drawn from the same eligible users (the
control group is assigned after reachability, consent and frequency caps), so they compare.
A conversion is the prediction's goal event in (run, run + window].
"""
from __future__ import annotations

import math
import time
from typing import Any

from sqlalchemy import Connection, and_, case, exists, func, select

from plugin.campaigns import breaker, definitions
from plugin.engagement import outcomes
from plugin.store.tables import campaign_runs, event_types, events, outbox, predictions

DAY = 86_400
ENGAGEMENT = ("delivered", "opened", "clicked", "bounced", "complained", "unsubscribed")
Z95 = 1.959964


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    denominator = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, center - half), min(1.0, center + half)


def newcombe(x1: int, n1: int, x2: int, n2: int, z: float = Z95) -> tuple[float, float, float] | None:
    """Difference p1 - p2 with Newcombe's hybrid score interval (method 10), or None without data."""
    if n1 == 0 or n2 == 0:
        return None
    p1, p2 = x1 / n1, x2 / n2
    l1, u1 = wilson(x1, n1, z)
    l2, u2 = wilson(x2, n2, z)
    d = p1 - p2
    return d, d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2), d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)


def campaign_results(conn: Connection, workspace_id: int, campaign_id: int, now_ts: int | None = None) -> dict:
    now_ts = int(time.time()) if now_ts is None else now_ts
    campaign = definitions.get_row(conn, workspace_id, campaign_id)
    runs = list(conn.execute(select(campaign_runs).where(campaign_runs.c.campaign_id == campaign.id)
                             .order_by(campaign_runs.c.id)))
    tiers = [_empty(t["name"]) for t in campaign.tiers]
    for run in runs:
        for i, counted in enumerate((run.counts or {}).get("tiers", [])):
            if i < len(tiers):
                tiers[i]["targeted"] += counted.get("targeted", 0)
                for reason in ("already_messaged", "already_in_control"):
                    if counted.get(reason):
                        tiers[i]["skipped"][reason] = tiers[i]["skipped"].get(reason, 0) + counted[reason]
    _delivery_counts(conn, [r.id for r in runs], tiers)
    _engagement_counts(conn, [r.id for r in runs], tiers)
    goal = _goal(conn, workspace_id, campaign.prediction_id)
    matured = [r for r in runs if r.run_ts + r.window_days * DAY <= now_ts]
    for run in matured:
        _conversions(conn, workspace_id, run, goal, tiers)
    for tier in tiers:
        tier["converted"] = tier["_groups"]["treatment"][1] if matured else None
        tier["outcomes"] = _outcomes(tier.pop("_groups")) if matured else None
    pending = [r for r in runs if r not in matured]
    return {"campaign_id": campaign.id, "runs": len(runs), "runs_measured": len(matured),
            "next_measurement_at": min((r.run_ts + r.window_days * DAY for r in pending), default=None),
            "tiers": tiers, "connectors": breaker.status(conn, workspace_id, now_ts)}


def _empty(name: str) -> dict:
    return {"tier": name, "targeted": 0, "pending": 0, "sent": 0, "failed": 0, "dead": 0, "held": 0,
            "unknown": 0,
            **{kind: 0 for kind in ENGAGEMENT}, "skipped": {}, "channels": {},
            "_groups": {"treatment": [0, 0, 0.0], "control": [0, 0, 0.0]}}


def _delivery_counts(conn: Connection, run_ids: list[int], tiers: list[dict]) -> None:
    if not run_ids:
        return
    rows = conn.execute(select(outbox.c.tier, outbox.c.channel, outbox.c.status, outbox.c.reason, func.count())
                        .where(outbox.c.run_id.in_(run_ids))
                        .group_by(outbox.c.tier, outbox.c.channel, outbox.c.status, outbox.c.reason))
    for index, channel, status, reason, n in rows:
        if index >= len(tiers):
            continue
        tier = tiers[index]
        per_channel = tier["channels"].setdefault(channel, {"pending": 0, "sent": 0, "failed": 0, "dead": 0,
                                                            "held": 0, "unknown": 0, "skipped": {}})
        status = "pending" if status == "sending" else status  # in flight: not settled yet
        if status == "skipped":
            for bucket in (tier["skipped"], per_channel["skipped"]):
                bucket[reason] = bucket.get(reason, 0) + n
        else:
            tier[status] = tier.get(status, 0) + n
            per_channel[status] = per_channel.get(status, 0) + n


def _engagement_counts(conn: Connection, run_ids: list[int], tiers: list[dict]) -> None:
    """Delivered, opened, clicked… per tier and channel, from the messages' engagement."""
    for (index, channel), counted in outcomes.counts_by_tier(conn, run_ids).items():
        if index >= len(tiers):
            continue
        per_channel = tiers[index]["channels"].setdefault(channel, {})
        for kind in ENGAGEMENT:
            tiers[index][kind] += counted[kind]
            per_channel[kind] = per_channel.get(kind, 0) + counted[kind]


def _goal(conn: Connection, workspace_id: int, prediction_id: int) -> Any:
    return conn.execute(select(predictions.c.goal_event, predictions.c.goal_condition).where(
        predictions.c.id == prediction_id, predictions.c.workspace_id == workspace_id)).first()


def _conversions(conn: Connection, workspace_id: int, run: Any, goal: Any, tiers: list[dict]) -> None:
    """Add the run's users and conversions per tier and group (treatment / control)."""
    end = run.run_ts + run.window_days * DAY
    type_id = (select(event_types.c.id).where(event_types.c.workspace_id == workspace_id,
                                              event_types.c.name == run.goal_event).scalar_subquery())
    per_user = (select(outbox.c.tier, outbox.c.user_id,
                       func.max(case((outbox.c.status != "skipped", 1), else_=0)).label("treated"),
                       func.max(case((outbox.c.reason == "control", 1), else_=0)).label("held_out"),
                       func.max(outbox.c.score).label("score"))
                .where(outbox.c.run_id == run.id)
                .group_by(outbox.c.tier, outbox.c.user_id).subquery())
    happened = [events.c.workspace_id == workspace_id, events.c.user_id == per_user.c.user_id,
                events.c.event_type_id == type_id, events.c.ts > run.run_ts, events.c.ts <= end]
    if goal is not None and goal.goal_condition:
        from plugin.predictions.eligibility import goal_condition_sql  # the predictions' own rule
        happened.append(goal_condition_sql(conn, goal.goal_condition))
    converted = case((exists().where(and_(*happened)), 1), else_=0)
    group = case((per_user.c.treated == 1, "treatment"), else_="control")
    rows = conn.execute(select(per_user.c.tier, group, func.count(), func.sum(converted),
                               func.sum(per_user.c.score))
                        .where((per_user.c.treated == 1) | (per_user.c.held_out == 1))
                        .group_by(per_user.c.tier, group))
    for index, name, users, conversions, score_sum in rows:
        if index < len(tiers):
            totals = tiers[index]["_groups"][name]
            totals[0] += int(users)
            totals[1] += int(conversions or 0)
            totals[2] += float(score_sum or 0) / 100


def _outcomes(groups: dict[str, list]) -> dict:
    (nt, xt, et), (nc, xc, ec) = groups["treatment"], groups["control"]
    uplift = newcombe(xt, nt, xc, nc)
    return {
        "treatment": {"users": nt, "conversions": xt, "rate": _rate(xt, nt), "expected_conversions": round(et, 2)},
        "control": {"users": nc, "conversions": xc, "rate": _rate(xc, nc), "expected_conversions": round(ec, 2)},
        "uplift": None if uplift is None else {
            "difference": round(uplift[0], 6), "ci95": [round(uplift[1], 6), round(uplift[2], 6)],
            "method": "newcombe_hybrid_score", "significant": uplift[1] > 0 or uplift[2] < 0},
        "expected_conversions": round(et + ec, 2), "actual_conversions": xt + xc,
    }


def _rate(x: int, n: int) -> float | None:
    return round(x / n, 6) if n else None
