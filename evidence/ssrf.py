"""Which addresses a capture may connect to (SSRF protection).

A capture service fetches URLs chosen by its users, so by default it refuses every address that is
not globally routable: loopback, private (RFC 1918, ULA), link-local, shared (CGN), multicast,
reserved and unspecified, and every IPv6 form that embeds an IPv4 address (IPv4-mapped, 6to4,
Teredo, NAT64, ...) is judged by the IPv4 host it reaches. The check runs on the resolved address,
right before connecting and for every connection (the raw fetch, every redirect hop and every
browser sub-request), and the socket then connects to that same checked address: a DNS answer
that changes between check and use (DNS rebinding) cannot slip through. Tests and intranet
deployments pass ``allow_private=True``; unspecified, multicast and broadcast addresses stay
refused even then.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from evidence.capture_errors import BlockedAddress, CaptureError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
ALLOWED_SCHEMES = ("http", "https")
MAX_URL_CHARS = 8192

_NET = ipaddress.IPv6Network
#: Refused even with allow_private: no capture can mean them.
_ALWAYS_REFUSED = ("an unspecified address", "a multicast address", "a broadcast address")

#: The IANA special-purpose registries (IPv4 and IPv6) written out here rather than taken from
#: ``ipaddress.is_private``/``is_global``, whose tables differ between Python releases (3.11.7 calls
#: 2002::/16, fec0::/10 and 64:ff9b:1::/48 global). First match wins, so narrow rows come first.
_IPV4_CLASSES = tuple((ipaddress.IPv4Network(net), name) for net, name in (
    ("0.0.0.0/32", "an unspecified address"),
    ("0.0.0.0/8", "a reserved address (\"this network\")"),
    ("10.0.0.0/8", "a private address"),
    ("100.64.0.0/10", "a shared (carrier-grade NAT) address"),
    ("127.0.0.0/8", "a loopback address"),
    ("169.254.0.0/16", "a link-local address"),
    ("172.16.0.0/12", "a private address"),
    ("192.0.0.0/24", "an IETF protocol address"),
    ("192.0.2.0/24", "a documentation address"),
    ("192.88.99.0/24", "a deprecated 6to4 relay address"),
    ("192.168.0.0/16", "a private address"),
    ("198.18.0.0/15", "a benchmarking address"),
    ("198.51.100.0/24", "a documentation address"),
    ("203.0.113.0/24", "a documentation address"),
    ("224.0.0.0/4", "a multicast address"),
    ("255.255.255.255/32", "a broadcast address"),
    ("240.0.0.0/4", "a reserved address"),
))
_IPV6_CLASSES = tuple((ipaddress.IPv6Network(net), name) for net, name in (
    ("::/128", "an unspecified address"),
    ("::1/128", "a loopback address"),
    ("::ffff:0:0:0/96", "a deprecated IPv4-translated address"),
    ("::/96", "a deprecated IPv4-compatible address"),
    ("64:ff9b:1::/48", "a local-use NAT64 address"),
    ("::/8", "a reserved address"),
    ("100::/64", "a discard-only address"),
    ("2001:2::/48", "a benchmarking address"),
    ("2001:10::/28", "a deprecated ORCHID address"),
    ("2001::/23", "an IETF protocol address"),
    ("2001:db8::/32", "a documentation address"),
    ("3fff::/20", "a documentation address"),
    ("5f00::/16", "an SRv6 segment address"),
    ("fc00::/7", "a private (unique local) address"),
    ("fe80::/10", "a link-local address"),
    ("fec0::/10", "a deprecated site-local address"),
    ("ff00::/8", "a multicast address"),
))
#: Forms that reach their embedded IPv4 host, so a public embedded host makes them public too. The
#: deprecated ones (IPv4-compatible, IPv4-translated) and local-use NAT64 stay refused by their own row.
_ROUTED_FORMS = ("an IPv4-mapped address", "a 6to4 address", "a Teredo address", "a NAT64 address")
#: Only 2000::/3 is handed out as global unicast; everything else not matched above is unassigned.
_IPV6_GLOBAL_UNICAST = _NET("2000::/3")


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> tuple[str, list[ipaddress.IPv4Address]] | None:
    """The IPv4 addresses an IPv6 transition form carries, with the form's name; None for plain IPv6.

    Connecting to any of these forms reaches (or asks a relay to reach) the embedded IPv4 host, so
    that host decides whether the capture may go there.
    """
    value = int(ip)
    low32 = ipaddress.IPv4Address(value & 0xFFFFFFFF)
    if ip.ipv4_mapped is not None:
        return "an IPv4-mapped address", [ip.ipv4_mapped]
    if ip in _NET("::ffff:0:0:0/96"):
        return "an IPv4-translated address", [low32]
    if ip in _NET("::/96") and value > 1:
        return "an IPv4-compatible address", [low32]
    if ip.sixtofour is not None:
        return "a 6to4 address", [ip.sixtofour]
    if ip.teredo is not None:
        server, client = ip.teredo  # the client is stored bit-inverted; ipaddress undoes that
        return "a Teredo address", [server, client]
    if ip in _NET("64:ff9b::/96"):
        return "a NAT64 address", [low32]
    if ip in _NET("64:ff9b:1::/48"):
        # RFC 6052 lets a local-use prefix be /48 (IPv4 in bits 48-63 and 72-87, zero suffix) or /96
        # (IPv4 in the last 32 bits); a non-zero tail means the /96 layout.
        if value & 0xFF_FFFF_FFFF:
            return "a local-use NAT64 address", [low32]
        at_48 = ipaddress.IPv4Address(((value >> 64) & 0xFFFF) << 16 | ((value >> 40) & 0xFFFF))
        return "a local-use NAT64 address", [at_48]
    return None


def _registry_class(ip: IPAddress) -> str | None:
    table: Iterable[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str]]
    table = _IPV4_CLASSES if isinstance(ip, ipaddress.IPv4Address) else _IPV6_CLASSES
    for network, name in table:
        if ip in network:
            return name
    if isinstance(ip, ipaddress.IPv6Address) and ip not in _IPV6_GLOBAL_UNICAST:
        return "an unassigned address"
    # Defence in depth: whatever a later Python's own table adds is refused too.
    return None if ip.is_global else "a non-global address"


def address_class(ip: IPAddress) -> str | None:
    """Name why ``ip`` is not public ("a loopback address", "a private address (10.0.0.1 in a 6to4
    address)", ...), or None when it is a global unicast address a capture may reach."""
    embedded = _embedded_ipv4(ip) if isinstance(ip, ipaddress.IPv6Address) else None
    if embedded is not None:
        form, inner = embedded
        for address in inner:
            kind = _registry_class(address)
            if kind is not None:
                return f"{kind} ({address} in {form})"
        if form in _ROUTED_FORMS:
            return None
    return _registry_class(ip)


@dataclass(frozen=True)
class AddressPolicy:
    allow_private: bool = False

    def refusal(self, ip: IPAddress) -> str | None:
        """Why ``ip`` is refused, or None when the capture may connect to it."""
        kind = address_class(ip)
        if kind is None:
            return None
        if kind.startswith(_ALWAYS_REFUSED):
            return kind
        return None if self.allow_private else kind

    def check(self, host: str, addresses: Iterable[str]) -> None:
        """Raise BlockedAddress if any address of ``host`` is refused (all must pass, not just one)."""
        for text in addresses:
            kind = self.refusal(ipaddress.ip_address(text))
            if kind is not None:
                hint = "" if kind.startswith(_ALWAYS_REFUSED) else \
                    "; captures of private addresses are refused (allow_private is off)"
                raise BlockedAddress(host, text, kind, hint)

    def record(self) -> dict[str, object]:
        refused = "unspecified, multicast, broadcast"
        if not self.allow_private:
            refused += (", every other class of the IANA special-purpose registries (loopback, private, "
                        "link-local, shared, documentation, reserved, deprecated), unassigned IPv6")
        return {"allow_private": self.allow_private, "refused": refused,
                "embedded_ipv4": "IPv4-mapped, 6to4, Teredo and NAT64 addresses are judged by the IPv4 address "
                                 "they carry; deprecated IPv4-compatible and IPv4-translated ones like reserved "
                                 "addresses",
                "checked": "after DNS resolution, for every connection: raw fetch, each redirect, "
                           "every browser sub-request"}


def split_url(url: str) -> tuple[str, str, int]:
    """Return ``(scheme, host, port)`` of a capturable URL. Raises CaptureError for anything else."""
    if len(url) > MAX_URL_CHARS:
        raise CaptureError(f"URL is longer than {MAX_URL_CHARS} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise CaptureError(f"malformed URL {url[:200]!r}: {exc}") from exc
    scheme = parts.scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        raise CaptureError(f"only http and https URLs can be captured, not {scheme or 'a relative URL'!r}")
    if not parts.hostname:
        raise CaptureError(f"URL {url[:200]!r} has no host")
    if parts.username is not None or parts.password is not None:
        raise CaptureError("URLs with credentials (user:password@) are refused")
    return scheme, parts.hostname, port or (443 if scheme == "https" else 80)


def normalise_url(url: str) -> str:
    """The URL as a browser puts it on the wire and in its address bar: lower-case scheme and host,
    no default port, ``/`` for an empty path, no fragment (fragments are never sent). Raises CaptureError."""
    scheme, host, port = split_url(url)
    parts = urlsplit(url.strip())
    shown = f"[{host}]" if ":" in host else host
    default = 443 if scheme == "https" else 80
    netloc = shown if port == default else f"{shown}:{port}"
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))
