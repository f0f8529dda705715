"""Where connectors may connect: documented provider hosts, and no internal address, ever.

Two rules, both enforced here for every connector:

* A provider connector (SendGrid, FCM, Meta, Google, Braze, CleverTap) calls only its provider's
  documented hosts, over HTTPS. Its URL settings carry the list as `x-allowed-hosts`; the
  settings validator and `Connector.request` both check it.
* Every connection — provider or free-form (the outbound webhook, SMTP) — is checked **when it
  is opened, after DNS resolution**: the name is resolved once, every address it resolves to
  must be public (no loopback, private, link-local, multicast, reserved or unspecified
  address), and the socket is connected to exactly the address that was checked, so a DNS
  answer that changes between a check and the connect (rebinding) gains nothing.

The operator may trust named hosts (`LIKELY_OUTBOUND_ALLOWED_HOSTS`, for on-premise SMTP
servers, webhooks or provider emulators): those pass both rules. A tenant cannot.
Redirects are never followed (see `Connector.request`), so a documented host cannot bounce
a request elsewhere either.
"""
from __future__ import annotations

import ipaddress
import smtplib
import socket
from dataclasses import dataclass, field
from typing import Any, Iterable
from urllib.parse import urlsplit

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError

from .errors import ConfigurationError

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class DestinationRefused(ConfigurationError):
    """The destination is not one this connector may reach. Not an OSError on purpose: urllib3
    and smtplib must not turn it into a retryable connection error."""


def normal_host(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()


@dataclass(frozen=True)
class Egress:
    """The outbound policy: which host names the operator trusts to be internal."""

    trusted_hosts: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def of(cls, hosts: Iterable[str] = ()) -> "Egress":
        return cls(frozenset(normal_host(h) for h in hosts if h and h.strip()))

    def trusts(self, host: str | None) -> bool:
        return bool(host) and normal_host(host) in self.trusted_hosts

    def connect(self, host: str, port: int, timeout: Any = None, source_address: Any = None,
                socket_options: Iterable[tuple] | None = None) -> socket.socket:
        """Resolve `host`, refuse internal addresses (unless the host is trusted), connect to the
        address that was checked. Raises DestinationRefused, or OSError as socket.connect does."""
        infos = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
        if not self.trusts(host):
            for *_, sockaddr in infos:
                kind = internal_kind(ipaddress.ip_address(sockaddr[0].split("%")[0]))
                if kind:
                    raise DestinationRefused(f"destination_refused: the host resolves to a {kind} address")
        error: OSError | None = None
        for family, kind, proto, _, sockaddr in infos:
            sock = socket.socket(family, kind, proto)
            try:
                for option in socket_options or ():
                    sock.setsockopt(*option)
                if isinstance(timeout, (int, float)):
                    sock.settimeout(timeout)
                if source_address:
                    sock.bind(source_address)
                sock.connect(sockaddr)
                return sock
            except OSError as exc:
                error = exc
                sock.close()
        raise error or OSError(f"no address for {host}")


def internal_kind(address: Address) -> str | None:
    """What makes an address internal (a word for the error), or None for a public address."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour or (address.teredo or (None, None))[1]
        if embedded is not None:
            return internal_kind(embedded)
    for kind in ("unspecified", "loopback", "link_local", "multicast", "reserved", "private"):
        if getattr(address, f"is_{kind}"):
            return kind.replace("_", "-")
    if not address.is_global:  # shared (CGNAT) space, documentation ranges, ...
        return "non-public"
    return None


_policy = Egress()


def configure(trusted_hosts: Iterable[str] = ()) -> Egress:
    """Set this process's policy (the app does it from LIKELY_OUTBOUND_ALLOWED_HOSTS)."""
    global _policy
    _policy = Egress.of(trusted_hosts)
    return _policy


def policy() -> Egress:
    return _policy


# -- provider hosts ------------------------------------------------------------------------

def provider_url(hosts: Iterable[str], *, default: str | None = None, title: str = "",
                 optional: bool = False) -> dict:
    """The settings schema of a URL that must point at one of a provider's documented hosts.

    `optional`: an empty string means "not set" (e.g. a token URI that defaults to the key's own).
    """
    prop: dict[str, Any] = {"type": "string", "maxLength": 2048, "x-allowed-hosts": sorted(hosts),
                            "x-destination": True}
    if not optional:
        prop["minLength"] = 1
    if default is not None:
        prop["default"] = default
    if title:
        prop["title"] = title
    return prop


def host_problem(host: str, egress: Egress) -> str | None:
    """Why a host name may not be a free-form destination as written (before any DNS lookup):
    an internal IP literal or a `localhost` name. Names are checked again when connecting."""
    name = normal_host(host)
    if egress.trusts(name):
        return None
    if name == "localhost" or name.endswith(".localhost"):
        return "a loopback host"
    try:
        kind = internal_kind(ipaddress.ip_address(name))
    except ValueError:
        return None
    return f"a {kind} address" if kind else None


def url_problem(url: Any, hosts: Iterable[str] | None, egress: Egress) -> str | None:
    """Why `url` may not be called under `hosts` (None: any public host), or None if it may."""
    if not isinstance(url, str):
        return "not a URL"
    try:
        parts = urlsplit(url)
        host, _ = parts.hostname, parts.port  # .port raises on a malformed port
    except ValueError:
        return "not a URL"
    if not host or parts.username or parts.password:
        return "not a URL with a host (and no user:password@)"
    if egress.trusts(host):
        return None if parts.scheme in ("http", "https") else "not an http(s) URL"
    if parts.scheme != "https":
        return "not an https URL"
    if hosts is None:
        return host_problem(host, egress)
    if normal_host(host) not in {normal_host(h) for h in hosts}:
        return "not one of the provider's documented hosts"
    return None


# -- requests: a transport adapter whose connections check the peer ----------------------

class _CheckedConnection:
    egress: Egress

    def _new_conn(self) -> socket.socket:  # urllib3's hook that opens the socket
        try:
            return self.egress.connect(self._dns_host, self.port, self.timeout,  # type: ignore[attr-defined]
                                       self.source_address, self.socket_options)  # type: ignore[attr-defined]
        except socket.gaierror as exc:
            raise NameResolutionError(self.host, self, exc) from exc  # type: ignore[attr-defined]
        except TimeoutError as exc:
            raise ConnectTimeoutError(self, f"connection to {self.host} timed out") from exc  # type: ignore
        except OSError as exc:
            raise NewConnectionError(self, f"failed to establish a new connection: {exc}") from exc


def _pools(egress: Egress) -> dict[str, type]:
    http = type("CheckedHTTPConnection", (_CheckedConnection, HTTPConnection), {"egress": egress})
    https = type("CheckedHTTPSConnection", (_CheckedConnection, HTTPSConnection), {"egress": egress})
    return {"http": type("CheckedHTTPConnectionPool", (HTTPConnectionPool,), {"ConnectionCls": http}),
            "https": type("CheckedHTTPSConnectionPool", (HTTPSConnectionPool,), {"ConnectionCls": https})}


class GuardedAdapter(HTTPAdapter):
    """requests' adapter with connections that check the resolved peer before connecting."""

    def __init__(self, egress: Egress, **kwargs: Any):
        self.egress = egress
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _pools(self.egress)


def guard(session: Any, egress: Egress, **adapter_options: Any) -> Any:
    """Mount checked adapters on a requests session for both schemes; return the session."""
    adapter = GuardedAdapter(egress, **adapter_options)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


# -- smtplib ------------------------------------------------------------------------------

class _CheckedSMTPSocket(smtplib.SMTP):
    egress: Egress

    def _get_socket(self, host, port, timeout):  # smtplib's hook that opens the socket
        return self.egress.connect(host, port, timeout, self.source_address)


class CheckedSMTP(_CheckedSMTPSocket):
    """smtplib.SMTP whose connection checks the resolved peer first."""

    def __init__(self, *args: Any, egress: Egress, **kwargs: Any):
        self.egress = egress  # before SMTP.__init__, which connects
        super().__init__(*args, **kwargs)


class CheckedSMTPSSL(smtplib.SMTP_SSL, _CheckedSMTPSocket):
    """smtplib.SMTP_SSL over a checked socket: its `_get_socket` wraps what ours opens."""

    def __init__(self, *args: Any, egress: Egress, **kwargs: Any):
        self.egress = egress
        super().__init__(*args, **kwargs)
