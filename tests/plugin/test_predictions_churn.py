"""Churn shares the likelihood machinery; its campaign playbook is the likelihood one inverted."""
from __future__ import annotations

from plugin.campaigns import presets


def test_the_churn_playbook_gives_the_biggest_incentive_to_the_highest_risk():
    churn = {t["name"]: t for t in presets.apply("churn_playbook", {}, None)}
    likely = {t["name"]: t for t in presets.apply("playbook", {}, None)}
    offer = {name: churn[name]["offer"]["discount_percent"] for name in ("High", "Medium", "Low")}
    assert offer["High"] > offer["Medium"] > offer["Low"] == 0
    assert likely["High"]["offer"]["discount_percent"] < likely["Low"]["offer"]["discount_percent"]  # the opposite
    assert all(t["band"] == {"categories": [t["name"]]} for t in churn.values())
