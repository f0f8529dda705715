"""The outbound guard: which addresses count as internal, and which URLs a provider may call."""
from __future__ import annotations

import ipaddress
import socket

import pytest

from connectors import net


@pytest.mark.parametrize("address, kind", [
    ("127.0.0.1", "loopback"), ("127.10.0.1", "loopback"), ("::1", "loopback"),
    ("169.254.169.254", "link-local"), ("fe80::1", "link-local"),
    ("10.1.2.3", "private"), ("172.16.0.1", "private"), ("192.168.1.1", "private"), ("fd00::1", "private"),
    ("224.0.0.251", "multicast"), ("ff02::1", "multicast"),
    ("240.0.0.1", "reserved"), ("0.0.0.0", "unspecified"),
    ("100.64.0.1", "non-public"),                    # carrier-grade NAT (shared address space)
    ("::ffff:127.0.0.1", "loopback"),                # IPv4-mapped IPv6
    ("::ffff:169.254.169.254", "link-local"),
    ("2002:7f00:1::", "loopback"),                   # 6to4 of 127.0.0.1
    ("2002:a9fe:a9fe::", "link-local"),              # 6to4 of 169.254.169.254
])
def test_internal_addresses_are_named(address, kind):
    assert net.internal_kind(ipaddress.ip_address(address)) == kind


@pytest.mark.parametrize("address", ["8.8.8.8", "157.240.22.35", "2a03:2880:f12f:83:face:b00c::25de"])
def test_public_addresses_pass(address):
    assert net.internal_kind(ipaddress.ip_address(address)) is None


def test_a_name_resolving_to_any_internal_address_is_refused_before_connecting(monkeypatch):
    """One internal answer among public ones is enough: nothing is connected at all."""
    connected = []
    monkeypatch.setattr(socket, "getaddrinfo", lambda host, port, *a, **k: [
        (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("157.240.22.35", port)),
        (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.5", port))])
    monkeypatch.setattr(socket.socket, "connect", lambda self, addr: connected.append(addr))
    with pytest.raises(net.DestinationRefused, match="private"):
        net.Egress().connect("hooks.customer.example", 443, 5)
    assert connected == []


def test_a_trusted_name_connects_to_exactly_the_address_it_resolved_to(monkeypatch):
    connected = []
    monkeypatch.setattr(socket, "getaddrinfo", lambda host, port, *a, **k: [
        (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.5", port))])
    monkeypatch.setattr(socket.socket, "connect", lambda self, addr: connected.append(addr))
    net.Egress.of(["SMTP.Internal.example."]).connect("smtp.internal.example", 25, 5).close()
    assert connected == [("10.0.0.5", 25)]


@pytest.mark.parametrize("url, problem", [
    ("https://api.sendgrid.com/v3", None),
    ("https://API.EU.SENDGRID.COM", None),
    ("https://api.sendgrid.com:8443/v3", None),      # the host is what is checked
    ("http://api.sendgrid.com", "not an https URL"),
    ("https://api.sendgrid.com.evil.example", "not one of the provider's documented hosts"),
    ("https://evil.example/api.sendgrid.com", "not one of the provider's documented hosts"),
    ("https://api.sendgrid.com@evil.example", "not a URL with a host (and no user:password@)"),
    ("https://[::1", "not a URL"),
    ("https://api.sendgrid.com:99999", "not a URL"),
    (42, "not a URL"),
])
def test_provider_urls_must_be_on_documented_hosts(url, problem):
    assert net.url_problem(url, ["api.sendgrid.com", "api.eu.sendgrid.com"], net.Egress()) == problem


def test_a_trusted_host_may_stand_in_for_a_provider_even_over_http():
    trusted = net.Egress.of(["127.0.0.1"])
    assert net.url_problem("http://127.0.0.1:8025/v3", ["api.sendgrid.com"], trusted) is None
    assert net.url_problem("http://127.0.0.2:8025/v3", ["api.sendgrid.com"], trusted) == "not an https URL"


@pytest.mark.parametrize("host, problem", [
    ("127.0.0.1", "a loopback address"), ("[::1]", "a loopback address"), ("LOCALHOST.", "a loopback host"),
    ("db.localhost", "a loopback host"), ("169.254.169.254", "a link-local address"),
    ("192.168.0.10", "a private address"), ("smtp.customer.example", None), ("8.8.8.8", None),
])
def test_free_form_hosts_written_as_internal_addresses_are_named(host, problem):
    assert net.host_problem(host, net.Egress()) == problem
    assert net.host_problem(host, net.Egress.of([host])) is None
