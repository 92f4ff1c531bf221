"""Which addresses a capture may connect to (SSRF protection).

A capture service fetches URLs chosen by its users, so by default it refuses every address that is
not globally routable: loopback, private (RFC 1918, ULA), link-local, shared (CGN), multicast,
reserved and unspecified. The check runs on the resolved address, right before connecting and for
every connection (the raw fetch, every redirect hop and every browser sub-request), and the socket
then connects to that same checked address: a DNS answer that changes between check and use (DNS
rebinding) cannot slip through. Tests and intranet deployments pass ``allow_private=True``;
multicast and unspecified addresses stay refused even then.
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


def address_class(ip: IPAddress) -> str | None:
    """Name the non-public class of ``ip`` ("a loopback address", ...), or None if it is global."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return address_class(ip.ipv4_mapped)
    checks = (("is_unspecified", "an unspecified address"), ("is_multicast", "a multicast address"),
              ("is_loopback", "a loopback address"), ("is_link_local", "a link-local address"),
              ("is_private", "a private address"), ("is_reserved", "a reserved address"))
    for attribute, name in checks:
        if getattr(ip, attribute):
            return name
    return None if ip.is_global else "a non-global address"


@dataclass(frozen=True)
class AddressPolicy:
    allow_private: bool = False

    def refusal(self, ip: IPAddress) -> str | None:
        """Why ``ip`` is refused, or None when the capture may connect to it."""
        kind = address_class(ip)
        if kind is None:
            return None
        if kind in ("an unspecified address", "a multicast address"):
            return kind
        return None if self.allow_private else kind

    def check(self, host: str, addresses: Iterable[str]) -> None:
        """Raise BlockedAddress if any address of ``host`` is refused (all must pass, not just one)."""
        for text in addresses:
            kind = self.refusal(ipaddress.ip_address(text))
            if kind is not None:
                shown = host if host == text else f"{host} resolves to {text}, which"
                hint = "" if kind in ("an unspecified address", "a multicast address") else \
                    "; captures of private addresses are refused (allow_private is off)"
                raise BlockedAddress(f"{shown} is {kind}{hint}")

    def record(self) -> dict[str, object]:
        return {"allow_private": self.allow_private,
                "refused": "unspecified, multicast" + ("" if self.allow_private else
                                                       ", loopback, private, link-local, reserved, non-global"),
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
