"""The explicit registry of connectors: name -> class, enabled by settings.

Settings for all connectors are one object keyed by connector name, each validated against
that connector's own schema; a connector runs only when its section says `"enabled": true`.
`settings_schema()` is the combined JSON Schema that goes into the plugin's manifest.
"""
from __future__ import annotations

import copy
from typing import Any, Mapping

from .ads.google import GoogleCustomerMatch
from .ads.meta import MetaCustomAudience
from .base import Connector
from .email.sendgrid import SendgridEmail
from .email.smtp import SmtpEmail
from .errors import ConfigurationError
from .host.braze import BrazeHost
from .host.clevertap import CleverTapHost
from .in_app.braze import BrazeInApp
from .in_app.clevertap import CleverTapInApp
from .push.fcm import FcmPush
from .webhook import SignedWebhook

CONNECTORS: dict[str, type[Connector]] = {cls.name: cls for cls in (
    SendgridEmail, SmtpEmail, FcmPush, BrazeInApp, CleverTapInApp, MetaCustomAudience,
    GoogleCustomerMatch, BrazeHost, CleverTapHost, SignedWebhook)}


def get(name: str) -> type[Connector]:
    try:
        return CONNECTORS[name]
    except KeyError:
        raise ConfigurationError(f"unknown connector: {name}") from None


def settings_schema() -> dict:
    """JSON Schema of the `connectors` settings object: one optional section per connector."""
    return {
        "type": "object",
        "title": "Channel connectors",
        "properties": {name: {**copy.deepcopy(cls.settings_schema), "x-channel": cls.channel}
                       for name, cls in CONNECTORS.items()},
        "additionalProperties": False,
    }


def enabled(settings: Mapping[str, Mapping[str, Any]], **options: Any) -> dict[str, Connector]:
    """Instantiate every connector whose section has `enabled: true`.

    `options` (session, sleep, clock, wall_clock, rand) go to each constructor. A section
    that fails validation raises ConfigurationError naming the connector and the field.
    """
    unknown = sorted(set(settings) - set(CONNECTORS))
    if unknown:
        raise ConfigurationError(f"unknown connector(s): {', '.join(unknown)}")
    return {name: CONNECTORS[name](section, **options)
            for name, section in settings.items() if section.get("enabled")}


def by_channel(connectors: Mapping[str, Connector], channel: str) -> dict[str, Connector]:
    return {name: c for name, c in connectors.items() if c.channel == channel}
