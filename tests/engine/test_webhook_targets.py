"""Host spellings are read as the C library reads them: `parse_ipv4` agrees with `inet_aton`
(what getaddrinfo falls back to for numeric hosts) on every string of digits, hex and dots."""

from __future__ import annotations

import ipaddress
import socket

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.webhook_targets import TargetPolicy, is_public, parse_ipv4

numeric_hosts = st.text(alphabet="0123456789abcdefx.", min_size=1, max_size=18)


def inet_aton(host: str) -> ipaddress.IPv4Address | None:
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None


@settings(max_examples=3000)
@given(host=numeric_hosts.filter(lambda h: not h.endswith(".")))
def test_parse_ipv4_agrees_with_inet_aton(host: str) -> None:
    assert parse_ipv4(host) == inet_aton(host)


def test_a_trailing_dot_is_still_the_address() -> None:
    """inet_aton refuses "127.0.0.1." but a resolver may take it as a name that means the same
    address (browsers do): judged as the address, on the safe side."""
    assert parse_ipv4("127.0.0.1.") == ipaddress.IPv4Address("127.0.0.1")


def test_the_known_spellings_of_loopback_and_metadata() -> None:
    loopback = ipaddress.IPv4Address("127.0.0.1")
    for host in ["2130706433", "127.1", "127.0.1", "0x7f.1", "0x7f000001", "0177.0.0.1",
                 "017700000001", "0x7f.0.0.1"]:  # fmt: skip
        assert parse_ipv4(host) == loopback, host
    assert parse_ipv4("0xa9fea9fe") == ipaddress.IPv4Address("169.254.169.254")
    assert parse_ipv4("hooks.example.com") is None


def test_public_means_public() -> None:
    assert is_public(ipaddress.ip_address("93.184.215.14"))
    assert is_public(ipaddress.ip_address("2606:4700:4700::1111"))
    for text in ["100.64.0.1", "224.0.0.1", "240.0.0.1", "::ffff:8.8.8.8", "64:ff9b::a00:1",
                 "2002:a00:1::", "2001:db8::1", "::1", "0.0.0.0"]:  # fmt: skip
        assert not is_public(ipaddress.ip_address(text)), text
    assert TargetPolicy().allow_loopback is False
