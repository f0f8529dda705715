"""The likelihood playbook, shipped as campaign presets.

High → a reminder without a discount (push, or in-app); Medium → a promotion (email, plus
ads retargeting when an ads audience is given); Low → a bigger discount by email, or a
passive newsletter. Offers follow the sliding scale: the more likely, the smaller.
Presets use the default category names (Low / Medium / High) and hold out 10 % per tier
so that results can show the uplift each tier caused.
"""
from __future__ import annotations

import copy
from typing import Any, Mapping

from plugin.errors import ValidationFailed

DEFAULT_CONNECTORS = {"push": "fcm", "in_app": "braze_in_app", "email": "sendgrid",
                      "ads": "meta_custom_audience", "webhook": "webhook"}
CONTROL_SHARE = 0.1

_REMINDER = {"subject": "Still thinking about it?",
             "text": "Hi {{ user.first_name | default('there') }}, your picks are waiting for you."}
_PROMOTION = {"subject": "{{ offer.discount_percent | int }}% off, just for you",
              "text": "Hi {{ user.first_name | default('there') }}, take {{ offer.discount_percent | int }}% "
                      "off with code {{ offer.code }}.",
              "html": "<p>Hi {{ user.first_name | default('there') }},</p><p>Take "
                      "<b>{{ offer.discount_percent | int }}% off</b> with code {{ offer.code }}.</p>"}
_WIN_BACK = {"subject": "We miss you: {{ offer.discount_percent | int }}% off to come back",
             "text": "Hi {{ user.first_name | default('there') }}, come back and take {{ offer.discount_percent | int }}% "
                     "off with code {{ offer.code }}.",
             "html": "<p>Hi {{ user.first_name | default('there') }},</p><p>Come back and take "
                     "<b>{{ offer.discount_percent | int }}% off</b> with code {{ offer.code }}.</p>"}
_NEWSLETTER = {"subject": "What's new this month",
               "text": "Hi {{ user.first_name | default('there') }}, here is what's new this month.",
               "html": "<p>Hi {{ user.first_name | default('there') }},</p><p>Here is what's new this month.</p>"}


def _tier(name: str, channels: list[dict], discount: float, code: str | None = None) -> dict:
    offer: dict[str, Any] = {"discount_percent": discount}
    if code:
        offer["code"] = code
    return {"name": name, "band": {"categories": [name]}, "channels": channels, "offer": offer,
            "control_share": CONTROL_SHARE}


PRESETS: dict[str, dict] = {
    "playbook": {
        "description": "High: push reminder, no discount. Medium: 10% promotion by email (+ ads "
                       "retargeting). Low: 20% discount by email.",
        "tiers": [
            _tier("High", [{"channel": "push", "template": _REMINDER}], 0),
            _tier("Medium", [{"channel": "email", "template": _PROMOTION},
                             {"channel": "ads"}], 10, "LIKELY10"),
            _tier("Low", [{"channel": "email", "template": _PROMOTION}], 20, "LIKELY20"),
        ],
    },
    "playbook_in_app": {
        "description": "As the playbook, with the High reminder as an in-app message.",
        "tiers": [
            _tier("High", [{"channel": "in_app", "template": _REMINDER}], 0),
            _tier("Medium", [{"channel": "email", "template": _PROMOTION},
                             {"channel": "ads"}], 10, "LIKELY10"),
            _tier("Low", [{"channel": "email", "template": _PROMOTION}], 20, "LIKELY20"),
        ],
    },
    "playbook_newsletter": {
        "description": "As the playbook, but Low gets a passive newsletter instead of a discount.",
        "tiers": [
            _tier("High", [{"channel": "push", "template": _REMINDER}], 0),
            _tier("Medium", [{"channel": "email", "template": _PROMOTION},
                             {"channel": "ads"}], 10, "LIKELY10"),
            _tier("Low", [{"channel": "email", "template": _NEWSLETTER}], 0),
        ],
    },
    # For a churn prediction (Churn Risk Category) the playbook is inverted: the likelier the
    # churn, the bigger the incentive to stay.
    "churn_playbook": {
        "description": "For churn predictions. High risk: 20% win-back offer by email and push. Medium: "
                       "10% by email (+ ads retargeting). Low: a push reminder, no discount.",
        "tiers": [
            _tier("High", [{"channel": "email", "template": _WIN_BACK},
                           {"channel": "push", "template": _WIN_BACK}], 20, "STAY20"),
            _tier("Medium", [{"channel": "email", "template": _WIN_BACK}, {"channel": "ads"}], 10, "STAY10"),
            _tier("Low", [{"channel": "push", "template": _REMINDER}], 0),
        ],
    },
}


def listing() -> list[dict]:
    return [{"name": name, "description": p["description"], "tiers": apply(name, {}, None)}
            for name, p in PRESETS.items()]


def apply(name: str, connectors: Mapping[str, str], ads_audience_id: str | None,
          control_share: float | None = None) -> list[dict]:
    """The preset's tiers with connectors filled in; ads channels only with an audience id."""
    if name not in PRESETS:
        raise ValidationFailed(f"unknown preset {name!r}", code="unknown_preset",
                               details={"preset": [f"One of: {', '.join(PRESETS)}."]})
    chosen = {**DEFAULT_CONNECTORS, **connectors}
    tiers = copy.deepcopy(PRESETS[name]["tiers"])
    for tier in tiers:
        actions = []
        for action in tier["channels"]:
            if action["channel"] == "ads":
                if not ads_audience_id:
                    continue
                action["audience_id"] = ads_audience_id
            action["connector"] = chosen[action["channel"]]
            actions.append(action)
        tier["channels"] = actions
        if control_share is not None:
            tier["control_share"] = control_share
    return tiers
