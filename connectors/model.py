"""What goes into a connector and what comes out of it.

Every input has a `key`; a connector returns exactly one `Result` per distinct key,
in input order, so the plugin's outbox can settle each item on its own.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Mapping

Status = Literal["sent", "failed", "skipped"]


@dataclass(frozen=True)
class Message:
    """One rendered message for one recipient.

    `address` is what the channel delivers to: an email address, an FCM registration
    token, the host's user id (in-app) or the user id echoed to a webhook.
    `idempotency_key` is derived by the plugin and is stable across retries.
    """

    idempotency_key: str
    recipient_id: str
    address: str | None
    subject: str | None = None
    text: str | None = None
    html: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)
    unsubscribe_url: str | None = None

    @property
    def key(self) -> str:
        return self.idempotency_key


@dataclass(frozen=True)
class Member:
    """One audience member as the ad platforms and hosts know them (raw, un-hashed)."""

    member_id: str
    email: str | None = None
    phone: str | None = None  # with country code, E.164 preferred ("+14155550100")
    first_name: str | None = None
    last_name: str | None = None
    city: str | None = None
    state: str | None = None
    zip: str | None = None
    country: str | None = None  # ISO 3166-1 alpha-2
    madid: str | None = None  # mobile advertiser id (IDFA / AAID)
    extern_id: str | None = None  # advertiser's own id for Meta's EXTERN_ID key
    gender: str | None = None  # "f" / "m" (or female / male); Meta GEN
    date_of_birth: str | None = None  # ISO "YYYY-MM-DD"; Meta DOBY, DOBM, DOBD

    @property
    def key(self) -> str:
        return self.member_id


@dataclass(frozen=True)
class UserAttributes:
    """Attributes to write on a host user profile (likelihood score and category)."""

    key: str
    user_id: str
    attributes: Mapping[str, Any]


@dataclass(frozen=True)
class HostEvent:
    """A custom event to record on the host (e.g. `likely_category_changed`)."""

    key: str
    user_id: str
    name: str
    properties: Mapping[str, Any] = field(default_factory=dict)
    time: datetime | None = None


@dataclass(frozen=True)
class Result:
    """The outcome for one input item.

    status sent:    accepted by the provider; `provider_id` when the provider gives one.
    status failed:  `reason`; `retryable` says whether the outbox should try again
                    (after `retry_after` seconds if set); `invalid_address` means the
                    address/token must never be used again; `configuration_error`
                    means hold the item and fix the settings; `ambiguous` means the
                    provider may have accepted it (read timeout, dropped connection, 500):
                    resending risks a second delivery unless the provider de-duplicates.
    status skipped: not sent on purpose, `reason` says why.
    """

    key: str
    status: Status
    provider_id: str | None = None
    reason: str | None = None
    retryable: bool = False
    retry_after: float | None = None
    invalid_address: bool = False
    configuration_error: bool = False
    attempts: int = 0
    ambiguous: bool = False

    @classmethod
    def sent(cls, key: str, provider_id: str | None = None) -> "Result":
        return cls(key, "sent", provider_id=provider_id)

    @classmethod
    def skipped(cls, key: str, reason: str) -> "Result":
        return cls(key, "skipped", reason=reason)

    @classmethod
    def failed(cls, key: str, reason: str, *, retryable: bool = False,
               retry_after: float | None = None, invalid_address: bool = False,
               configuration_error: bool = False, ambiguous: bool = False) -> "Result":
        return cls(key, "failed", reason=reason, retryable=retryable, retry_after=retry_after,
                   invalid_address=invalid_address, configuration_error=configuration_error,
                   ambiguous=ambiguous)
