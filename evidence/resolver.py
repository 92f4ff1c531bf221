"""Name resolution for one capture: each host once, recorded, checked, then used for every connection.

Every connection of a capture (the raw fetch, each redirect, every browser sub-request through the
recorder) asks this resolver, so ``network.json`` holds the answers that were actually used, and the
verifier's S3 can check that each server address was among them. Answers come from DNS (dnspython,
with the system's resolv.conf nameservers, so the record names the resolver and the TTL); a name DNS
does not know (``localhost``, hosts-file names) falls back to the system resolver (getaddrinfo), and
the record says so.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import dns.asyncresolver
import dns.exception
import dns.resolver

from evidence.capture_errors import CaptureError
from evidence.ssrf import AddressPolicy
from verifier.manifest_writer import utc_iso

DNS_TIMEOUT_SECONDS = 5.0
MAX_HOSTS_PER_CAPTURE = 500
RESOLV_CONF = "/etc/resolv.conf"
_NO_DNS_ANSWER = (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer, dns.resolver.NoNameservers,
                  dns.resolver.YXDOMAIN, dns.exception.Timeout)


@dataclass(frozen=True)
class Resolution:
    host: str
    source: str
    queried_at: datetime
    answers: dict[str, list[str]]
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def addresses(self) -> list[str]:
        return [*self.answers.get("A", []), *self.answers.get("AAAA", [])]

    def record(self) -> dict[str, Any]:
        return {"host": self.host, "source": self.source, "queried_at": utc_iso(self.queried_at),
                "answers": self.answers, **self.detail}


def _literal(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return None


async def _query(resolver: dns.asyncresolver.Resolver, host: str, rdtype: str,
                 timeout: float) -> dns.resolver.Answer | None:
    try:
        return await resolver.resolve(host, rdtype, lifetime=timeout, search=False)
    except _NO_DNS_ANSWER:
        return None


async def _dns(host: str, timeout: float) -> Resolution | None:
    resolver = dns.asyncresolver.Resolver(configure=True)
    queried_at = datetime.now(UTC)
    results = await asyncio.gather(*(_query(resolver, host, t, timeout) for t in ("A", "AAAA")))
    answers: dict[str, list[str]] = {}
    ttl: dict[str, int] = {}
    answered_by: set[str] = set()
    for rdtype, answer in zip(("A", "AAAA"), results, strict=True):
        if answer is None or answer.rrset is None:
            continue
        answers[rdtype] = [item.address for item in answer]
        ttl[rdtype] = answer.rrset.ttl
        answered_by.add(f"{answer.nameserver}:{answer.port}")
    if not answers:
        return None
    return Resolution(host, "dns", queried_at, answers, {
        "resolver": {"kind": "dnspython stub resolver", "config": RESOLV_CONF,
                     "nameservers": [str(n) for n in resolver.nameservers], "answered_by": sorted(answered_by)},
        "ttl": ttl})


async def _system(host: str, timeout: float) -> Resolution:
    queried_at = datetime.now(UTC)
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(loop.getaddrinfo(host, None, type=socket.SOCK_STREAM), timeout)
    except TimeoutError as exc:
        raise CaptureError(f"cannot resolve {host}: no answer within {timeout:g} s") from exc
    except OSError as exc:
        raise CaptureError(f"cannot resolve {host}: {exc.strerror or exc}") from exc
    answers: dict[str, list[str]] = {}
    for family, _, _, _, sockaddr in infos:
        kind = "A" if family == socket.AF_INET else "AAAA"
        address = str(sockaddr[0])
        if address not in answers.setdefault(kind, []):
            answers[kind].append(address)
    return Resolution(host, "system", queried_at, answers, {
        "resolver": {"kind": "system resolver (getaddrinfo: hosts file, then nsswitch)",
                     "note": "DNS had no answer for this name"}})


class HostResolver:
    """Resolves each host once per capture, applies the address policy, and keeps every answer."""

    def __init__(self, policy: AddressPolicy, timeout: float = DNS_TIMEOUT_SECONDS) -> None:
        self.policy = policy
        self.timeout = timeout
        self._pending: dict[str, asyncio.Task[Resolution]] = {}

    async def resolve(self, host: str) -> Resolution:
        """Resolve ``host`` (or return the earlier answer). Raises CaptureError when it has no address."""
        host = host.lower().rstrip(".")
        task = self._pending.get(host)
        if task is None:
            if len(self._pending) >= MAX_HOSTS_PER_CAPTURE:
                raise CaptureError(f"the page contacts more than {MAX_HOSTS_PER_CAPTURE} hosts")
            task = asyncio.ensure_future(self._lookup(host))
            self._pending[host] = task
        return await asyncio.shield(task)

    async def _lookup(self, host: str) -> Resolution:
        literal = _literal(host)
        if literal is not None:
            kind = "A" if ipaddress.ip_address(literal).version == 4 else "AAAA"
            return Resolution(host, "ip-literal", datetime.now(UTC), {kind: [literal]})
        resolution = None
        if host != "localhost" and not host.endswith(".localhost"):
            resolution = await _dns(host, self.timeout)
        if resolution is None:
            resolution = await _system(host, self.timeout)
        if not resolution.addresses:
            raise CaptureError(f"cannot resolve {host}: no A or AAAA answer")
        return resolution

    async def allowed_addresses(self, host: str) -> list[str]:
        """The addresses to connect to for ``host``. Raises CaptureError or BlockedAddress."""
        resolution = await self.resolve(host)
        self.policy.check(host, resolution.addresses)
        return resolution.addresses

    def records(self) -> list[dict[str, Any]]:
        """Every completed resolution, for network.json."""
        return [task.result().record() for task in self._pending.values()
                if task.done() and not task.cancelled() and task.exception() is None]

    def close(self) -> None:
        for task in self._pending.values():
            task.cancel()
