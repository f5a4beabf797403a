"""Where a webhook may point: public https hosts only, checked by address, not by spelling.

A webhook makes the server POST wherever a channel member says, so "where" is checked twice:
at `webhook add` (the URL, and the addresses its name resolves to now) and before every
delivery (the name is resolved again and the connection goes to the address that was checked —
see adapters/webhook_sender.py). Refused: loopback, private, link-local (cloud metadata lives at
169.254.169.254), shared/CGNAT (100.64/10), multicast, reserved, unspecified and documentation
ranges, and IPv6 forms that carry such an IPv4 address (IPv4-mapped `::ffff:a.b.c.d`, NAT64
`64:ff9b::/96`, 6to4 `2002::/16`, Teredo).

Hosts are read the way resolvers read them, not only as dotted quads: `2130706433`, `127.1`,
`0x7f.1`, `0177.0.0.1` and `0x7f000001` are all 127.0.0.1 to `inet_aton`, so they are parsed
here with its rules and judged as the address they are. A host whose last label is numeric but
is no valid address is refused outright (as browsers do).

Engine side only: names are resolved through an injected `Resolver`; without one (or when a name
does not resolve yet) `webhook add` accepts it with a warning, and the delivery checks it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

Resolver = Callable[[str, int], Sequence[str]]
"""(host, port) → the addresses it resolves to now. Raises `Unresolved` when it does not."""


class Unresolved(LookupError):
    """The name does not resolve (no such name, or DNS not answering)."""


class TargetRefused(ValueError):
    """This URL or address must not be called; the message says why, in the user's terms."""


@dataclass(frozen=True)
class TargetPolicy:
    """How targets are checked in this process. `allow_loopback` exists for tests only
    (ALIGN_WEBHOOK_LOOPBACK_FOR_TESTS): it lets http:// and https:// reach 127.0.0.0/8 and ::1,
    and nothing else."""

    resolve: Resolver | None = None
    allow_loopback: bool = False


@dataclass(frozen=True)
class Target:
    """A checked URL: its parts, and the host as given (a name, or the address it spells)."""

    url: str
    scheme: str
    host: str
    port: int
    address: IPAddress | None  # None: a name, to resolve

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"


_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_NUMERIC_CHARS = frozenset("0123456789abcdefx")


def _inet_aton_part(text: str) -> int:
    """One part of an inet_aton address: decimal, 0x-hex or 0-octal."""
    if text.startswith("0x"):
        return int(text[2:], 16)  # "0x" alone is no number (ValueError), as in inet_aton
    if len(text) > 1 and text.startswith("0"):
        return int(text[1:], 8)
    return int(text, 10)


def parse_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """`host` read as inet_aton reads it (1 to 4 parts; the last fills the remaining bytes), or
    None when it is not an IPv4 address in any spelling."""
    parts = host.split(".")
    if host.endswith("."):  # a trailing dot is the root, not a part
        parts = parts[:-1]
    if not 1 <= len(parts) <= 4 or not all(p and set(p) <= _NUMERIC_CHARS for p in parts):
        return None
    try:
        numbers = [_inet_aton_part(p) for p in parts]
    except ValueError:
        return None
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (4 - len(head)):
        return None
    value = last
    for index, number in enumerate(head):
        value += number << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


def _looks_numeric(host: str) -> bool:
    """The last label is a number (decimal or 0x-hex): meant as an address, never a name."""
    label = host.rstrip(".").rsplit(".", 1)[-1]
    return bool(label) and (
        label.isdigit() or (label.startswith("0x") and set(label) <= _NUMERIC_CHARS)
    )


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]  # the client; the server is a public relay
    if any(address in net for net in _NAT64):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if int(address) >> 32 == 0 and int(address) > 1:  # IPv4-compatible ::a.b.c.d (deprecated)
        return ipaddress.IPv4Address(int(address))
    return None


def is_loopback(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        inner = _embedded_ipv4(address)
        if inner is not None:
            return inner.is_loopback
    return address.is_loopback


def is_public(address: IPAddress) -> bool:
    """Reachable on the internet and nothing else: `is_global` alone lets multicast and some
    reserved blocks through, and judges an IPv6 address without the IPv4 one it may carry."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id:
            return False
        inner = _embedded_ipv4(address)
        if inner is not None and not is_public(inner):
            return False
    return (
        address.is_global
        and not address.is_multicast
        and not address.is_reserved
        and not address.is_unspecified
        and not address.is_loopback
        and not address.is_link_local
        and not address.is_private
    )


def check_address(address: IPAddress, policy: TargetPolicy) -> None:
    """Raise TargetRefused unless a webhook may connect to `address`."""
    if is_public(address):
        return
    if policy.allow_loopback and is_loopback(address):
        return
    raise TargetRefused(
        f"Webhooks cannot reach private, loopback, link-local or reserved addresses ({address})."
    )


def _split(url: str) -> SplitResult:
    try:
        parts = urlsplit(url.strip().strip("<>"))
        parts.port  # noqa: B018 — raises ValueError for a bad port
    except ValueError as exc:
        raise TargetRefused("That is not a valid URL.") from exc
    return parts


def parse_target(url: str, policy: TargetPolicy) -> Target:
    """The URL checked as far as it can be without DNS: scheme, host spelling, literal
    addresses. Raises TargetRefused."""
    parts = _split(url)
    raw_host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not raw_host:
        raise TargetRefused("Give a full URL like https://example.com/hook.")
    if parts.username is not None or parts.password is not None:
        raise TargetRefused("Leave user names and passwords out of webhook URLs.")
    host = raw_host.lower()
    address: IPAddress | None
    if ":" in host:  # an IPv6 literal (urlsplit has removed the brackets)
        if "%" in host:
            raise TargetRefused("Webhook URLs cannot name a network interface (`%…`).")
        try:
            address = ipaddress.IPv6Address(host)
        except ValueError as exc:
            raise TargetRefused("That is not a valid IPv6 address.") from exc
    else:
        address = parse_ipv4(host)
        if address is None and _looks_numeric(host):
            raise TargetRefused(f"`{raw_host[:60]}` is not a valid address or host name.")
        if address is None and (
            host == "localhost" or host.endswith((".localhost", ".localhost."))
        ):
            address = ipaddress.IPv4Address("127.0.0.1")
    if address is not None:
        check_address(address, policy)
    # Plain http only to this machine, only in tests; a name must resolve there (see below).
    maybe_loopback = address is None or is_loopback(address)
    if parts.scheme == "http" and not (policy.allow_loopback and maybe_loopback):
        raise TargetRefused("Webhooks need an https:// URL.")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    # A literal address in any spelling is named by its canonical form from here on.
    named = address is None or host == "localhost" or host.endswith((".localhost", ".localhost."))
    return Target(parts.geturl(), parts.scheme, host if named else str(address), port, address)


def resolve_checked(target: Target, policy: TargetPolicy) -> list[IPAddress]:
    """The addresses to connect to: the literal one, or every address the name resolves to now
    — all must pass, or the target is refused (one internal answer among public ones is how
    DNS rebinding tries its luck). Raises Unresolved or TargetRefused."""
    if target.address is not None:
        return [target.address]
    if policy.resolve is None:
        raise Unresolved(target.host)
    answers = list(policy.resolve(target.host, target.port))
    if not answers:
        raise Unresolved(target.host)
    addresses: list[IPAddress] = []
    for answer in answers:
        address = ipaddress.ip_address(answer.split("%", 1)[0])
        check_address(address, policy)
        if target.scheme == "http" and not is_loopback(address):
            raise TargetRefused("Webhooks need an https:// URL.")
        addresses.append(address)
    return addresses


__all__ = [
    "Resolver",
    "Target",
    "TargetPolicy",
    "TargetRefused",
    "Unresolved",
    "check_address",
    "is_public",
    "parse_ipv4",
    "parse_target",
    "resolve_checked",
]
