"""Preview a campaign's messages for one user, rendered exactly as the worker would."""
from __future__ import annotations

from sqlalchemy import Connection, select

from plugin.campaigns import bands, channels, definitions, keys, templates
from plugin.errors import NotFound, ValidationFailed
from plugin.store.tables import predictions, scores, users


def render_for_user(conn: Connection, workspace_id: int, campaign_id: int, external_id: str,
                    tier_name: str | None = None) -> dict:
    campaign = definitions.get_row(conn, workspace_id, campaign_id)
    user = conn.execute(select(users.c.id, users.c.external_id, users.c.attributes).where(
        users.c.workspace_id == workspace_id, users.c.external_id == external_id)).first()
    if user is None:
        raise NotFound(f"user {external_id!r} does not exist", code="user_not_found")
    scored = conn.execute(select(scores.c.score, scores.c.category).where(
        scores.c.prediction_id == campaign.prediction_id, scores.c.user_id == user.id)).first()
    index = _tier_index(campaign.tiers, tier_name, scored)
    tier = campaign.tiers[index]
    prediction = conn.execute(select(predictions.c.name).where(
        predictions.c.id == campaign.prediction_id)).scalar_one()  # same workspace, by the campaign
    attributes = user.attributes or {}
    score = scored.score if scored else 0.0
    context = templates.message_context(attributes, user.external_id, score,
                                        scored.category if scored else tier["name"], prediction,
                                        tier["offer"], tier["name"], campaign.name)
    rendered = []
    for action in tier["channels"]:
        source = {k: v for k, v in (action.get("template") or {}).items() if v}
        try:
            fields = templates.render(source, context)
        except templates.TemplateProblem as problem:
            raise ValidationFailed(f"the {problem.field} template of tier {tier['name']!r} does not render "
                                   f"for this user: {problem.describe()}", code=problem.code,
                                   details={"field": problem.field, "line": problem.line,
                                            "channel": action["channel"]}) from None
        rendered.append({"channel": action["channel"], "connector": action["connector"], **fields,
                         "would_skip": _would_skip(action["channel"], attributes)})
    share = float(tier.get("control_share") or 0)
    return {"user_id": user.external_id, "tier": tier["name"], "score": round(score, 2) if scored else None,
            "category": scored.category if scored else None, "offer": tier["offer"],
            "in_control_group": share > 0 and keys.in_control(campaign.id, user.id, share),
            "messages": rendered}


def _tier_index(tiers: list[dict], tier_name: str | None, scored) -> int:
    if tier_name is not None:
        for i, tier in enumerate(tiers):
            if tier["name"] == tier_name:
                return i
        raise ValidationFailed(f"the campaign has no tier {tier_name!r}", code="unknown_tier",
                               details={"tier": [f"One of: {', '.join(t['name'] for t in tiers)}."]})
    index = bands.tier_of(tiers, scored.score, scored.category) if scored else None
    if index is None:
        raise ValidationFailed("the user is in no tier's band (or has no score); give `tier` to preview one",
                               code="user_not_in_band")
    return index


def _would_skip(channel: str, attributes: dict) -> str | None:
    reason = channels.skip_reason(channel, attributes)
    if reason:
        return reason
    if channel == "email" and not channels.email_address(attributes):
        return "not_reachable"
    if channel == "push" and not channels.push_tokens(attributes):
        return "not_reachable"
    return None
