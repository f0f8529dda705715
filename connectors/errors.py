"""The connectors' small error taxonomy (after the Singer SDK's).

A connector raises one of these from a provider call; the base turns it into
per-recipient results. Messages are short reason codes plus provider text that
has been passed through the connector's redactor, never a secret.
"""
from __future__ import annotations


class ConnectorError(Exception):
    """Base class: `reason` is what ends up in a Result."""

    def __init__(self, reason: str, *, retry_after: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class ConfigurationError(ConnectorError):
    """Settings or credentials are wrong (401/403, bad key): nothing will work until fixed."""


class FatalError(ConnectorError):
    """This recipient (or batch) can never succeed as it is: do not retry."""


class InvalidAddress(FatalError):
    """The address or device token is dead for good: the plugin must never use it again."""


class RetriableError(ConnectorError):
    """A transient failure (429, 5xx, timeout): retry later, after `retry_after` if given."""


class SkipRecipient(ConnectorError):
    """Nothing to send to this recipient (no address, no unsubscribe link...): not a failure."""


class AmbiguousError(RetriableError):
    """The request may have reached the provider and been accepted (a read timeout, a dropped
    connection, a 500/502/504): resending it may deliver twice unless the provider
    de-duplicates on our key. Transient all the same, so idempotent calls retry it."""
