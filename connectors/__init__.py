"""likely's channel connectors: rendered messages or member lists in, per-recipient results out.

Nothing here knows Flask or the store; the plugin's outbox owns durability and later retries.
"""
from .ads.google import GoogleCustomerMatch
from .ads.meta import MetaCustomAudience
from .base import AudienceConnector, BatchInfo, Connector, MessageConnector
from .email.sendgrid import SendgridEmail
from .email.smtp import SmtpEmail
from .errors import (
                     AmbiguousError,
                     ConfigurationError,
                     ConnectorError,
                     FatalError,
                     InvalidAddress,
                     RetriableError,
                     SkipRecipient,
)
from .host.braze import BrazeHost
from .host.clevertap import CleverTapHost
from .in_app.braze import BrazeInApp
from .in_app.clevertap import CleverTapInApp
from .model import HostEvent, Member, Message, Result, UserAttributes
from .push.fcm import FcmPush
from .registry import CONNECTORS, by_channel, enabled, settings_schema
from .webhook import SignedWebhook

__all__ = [
    "AmbiguousError", "AudienceConnector", "BatchInfo", "BrazeHost", "BrazeInApp", "CONNECTORS", "CleverTapHost",
    "CleverTapInApp", "ConfigurationError", "Connector", "ConnectorError", "FatalError", "FcmPush",
    "GoogleCustomerMatch", "HostEvent", "InvalidAddress", "Member", "Message", "MessageConnector",
    "MetaCustomAudience", "Result", "RetriableError", "SendgridEmail", "SignedWebhook", "SkipRecipient",
    "SmtpEmail", "UserAttributes", "by_channel", "enabled", "settings_schema",
]
