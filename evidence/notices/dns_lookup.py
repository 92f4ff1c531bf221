"""DNS for notices, through one configured resolver: a reply's DKIM key record, and a recipient's mail servers.

Every answer is recorded as fetched (name, resolver, time, TTL), because it becomes part of what is
sealed: the key record beside a reply, the MX answer beside a notice delivered straight to the
platform's mail server.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import dns.exception
import dns.resolver

from verifier.manifest_writer import utc_iso

DNS_TIMEOUT_SECONDS = 5.0
#: Mail servers tried for one recipient, in preference order.
MAX_MX_HOSTS = 5
NO_ANSWER = (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer, dns.resolver.NoNameservers, dns.exception.Timeout)


@dataclass(frozen=True)
class Nameserver:
    host: str
    port: int = 53

    @classmethod
    def parse(cls, text: str) -> Nameserver:
        """``HOST`` or ``HOST:PORT`` (``[v6]:PORT`` for IPv6)."""
        text = text.strip()
        if text.startswith("["):
            host, _, rest = text[1:].partition("]")
            return cls(host, int(rest[1:]) if rest.startswith(":") else 53)
        host, colon, port = text.rpartition(":")
        if colon and host and port.isdigit() and host.count(":") == 0:
            return cls(host, int(port))
        return cls(text)

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


def resolver_for(nameserver: Nameserver | None) -> dns.resolver.Resolver:
    """A resolver asking ``nameserver``, or the system's (resolv.conf) when None."""
    resolver = dns.resolver.Resolver(configure=nameserver is None)
    if nameserver is not None:
        resolver.nameservers = [nameserver.host]
        resolver.port = nameserver.port
    return resolver


def resolver_name(resolver: dns.resolver.Resolver) -> str:
    return ",".join(f"{n}:{resolver.port}" for n in resolver.nameservers)


@dataclass(frozen=True)
class MailServer:
    preference: int
    name: str
    addresses: tuple[str, ...]


def mail_servers(domain: str, nameserver: Nameserver | None) -> tuple[list[MailServer], dict[str, Any]]:
    """The domain's mail servers in preference order, each with its IPv4 addresses, and the answer as
    fetched. A domain without MX records is its own mail server (RFC 5321 §5.1)."""
    resolver = resolver_for(nameserver)
    record: dict[str, Any] = {"name": domain, "type": "MX", "resolver": resolver_name(resolver),
                              "fetched_at": utc_iso(datetime.now(UTC))}
    try:
        answer = resolver.resolve(domain, "MX", lifetime=DNS_TIMEOUT_SECONDS)
        exchanges = sorted((int(r.preference), r.exchange.to_text().rstrip(".")) for r in answer)
        record["ttl"] = answer.rrset.ttl if answer.rrset is not None else None
    except NO_ANSWER as exc:
        record["error"] = type(exc).__name__
        exchanges = [(0, domain)]
    servers = []
    for preference, name in exchanges[:MAX_MX_HOSTS]:
        try:
            addresses = tuple(r.to_text() for r in resolver.resolve(name, "A", lifetime=DNS_TIMEOUT_SECONDS))
        except NO_ANSWER:
            addresses = ()
        servers.append(MailServer(preference, name, addresses))
    record["servers"] = [{"preference": s.preference, "name": s.name, "addresses": list(s.addresses)}
                         for s in servers]
    return servers, record
