"""The clean-environment record (``evidence/environment-check.json``), made before every web capture.

SF/T 0091-2021 asks for a clean check of the capturing machine before a capture; the verifier's S4
reads this record and warns on every item that is not clean or not known. The record states facts,
not a verdict: the verifier judges them itself. What it holds:

- the hosts file: its sha256, its text, and every entry beyond a stock file's (``verifier.hosts_file``);
- the resolver: resolv.conf (nameservers, search, options), the nameservers the capture's DNS client
  actually uses, and the nsswitch ``hosts`` line the system fallback follows;
- proxies: proxy variables in this process's environment (any case; credentials cut from the values),
  proxy lines of /etc/environment, and those the browser had removed at launch;
- the clock: its offset against the TSA (one RFC 3161 round trip) and against an NTP server;
- the egress address: the local address of the route to the target, and whether the target sees it;
- the browser: its binary's sha256 now and at launch, its profile folder, and any extension it runs.

Nothing here connects to the target: the egress address comes from a UDP ``connect``, which picks
a route and sends no packet, so the address policy (checked in the next step) still comes first.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import dns.resolver
from playwright.async_api import Error as PlaywrightError

from evidence.browser import PROXY_VARIABLES, WarmBrowser, file_sha256
from evidence.capture_errors import CaptureError
from evidence.clock_probe import ClockReferences, ntp_offset, tsa_offset
from evidence.egress import EgressProxy
from evidence.resolver import RESOLV_CONF, HostResolver
from evidence.ssrf import split_url
from verifier import canonical
from verifier.capture_format import ENVIRONMENT_FORMAT
from verifier.hosts_file import MAX_HOSTS_TEXT_BYTES, non_default_entries, parse_hosts
from verifier.manifest_writer import utc_iso

HOSTS_FILE = Path("/etc/hosts")
NSSWITCH_CONF = Path("/etc/nsswitch.conf")
SYSTEM_ENVIRONMENT = Path("/etc/environment")
MAX_CONFIG_BYTES = 1 << 20
MAX_LISTED = 200


@cache
def own_host_names() -> frozenset[str]:
    """This machine's own names, which a stock hosts file maps to it (asked once: getfqdn may query DNS)."""
    names = {socket.gethostname()}
    with contextlib.suppress(OSError):
        names.add(socket.getfqdn())
    return frozenset(n.lower() for n in names | {n.split(".", 1)[0] for n in names} if n)


def _read_config(path: Path) -> bytes:
    with path.open("rb") as handle:
        data = handle.read(MAX_CONFIG_BYTES + 1)
    if len(data) > MAX_CONFIG_BYTES:
        raise OSError(f"{path} is over {MAX_CONFIG_BYTES} bytes")
    return data


def hosts_record(path: Path = HOSTS_FILE) -> dict[str, Any]:
    """sha256 of the hosts file, its text (when small and UTF-8) and its entries beyond the stock ones."""
    try:
        data = _read_config(path)
    except OSError as exc:
        return {"path": str(path), "status": "unreadable", "reason": f"{type(exc).__name__}: {exc}"[:300]}
    own = own_host_names()
    text = data.decode("utf-8", "replace")
    extra = non_default_entries(text, own)
    record: dict[str, Any] = {"path": str(path), "status": "read", "sha256": canonical.sha256_hex(data),
                              "size": len(data), "entries": len(parse_hosts(text)), "own_names": sorted(own),
                              "non_default": [e.record() for e in extra[:MAX_LISTED]],
                              "non_default_count": len(extra)}
    if len(data) <= MAX_HOSTS_TEXT_BYTES and text.encode() == data:
        record["text"] = text  # so a verifier recomputes the list above instead of taking it on trust
    return record


def resolver_record() -> dict[str, Any]:
    """resolv.conf as written, the DNS servers the capture's resolver uses, and the system fallback."""
    record: dict[str, Any] = {"config": RESOLV_CONF}
    try:
        data = _read_config(Path(RESOLV_CONF))
    except OSError as exc:
        return {**record, "status": "unreadable", "reason": f"{type(exc).__name__}: {exc}"[:300]}
    nameservers, search, options = [], [], []
    for line in data.decode("utf-8", "replace").splitlines():
        fields = line.split("#", 1)[0].split(";", 1)[0].split()
        if len(fields) >= 2 and fields[0] == "nameserver":
            nameservers.append(fields[1])
        elif fields and fields[0] in ("search", "domain"):
            search += fields[1:]
        elif fields and fields[0] == "options":
            options += fields[1:]
    try:
        used = [str(n) for n in dns.resolver.Resolver(configure=True).nameservers]
    except (dns.resolver.NoResolverConfiguration, OSError) as exc:
        used = []
        record["used_reason"] = f"{type(exc).__name__}: {exc}"[:300]
    try:
        nss = next((line.split(":", 1)[1].split("#", 1)[0].strip() for line in
                    _read_config(NSSWITCH_CONF).decode("utf-8", "replace").splitlines()
                    if line.startswith("hosts:")), "not set")
    except OSError:
        nss = "unreadable"
    return {**record, "status": "read", "sha256": canonical.sha256_hex(data), "nameservers": nameservers,
            "search": search, "options": options, "dns_servers_used": used,
            "used_by_capture": "DNS (dnspython) to dns_servers_used; a name DNS does not know falls back to "
                               "the system resolver (getaddrinfo), which follows nsswitch_hosts",
            "nsswitch_hosts": nss}


def _redacted(value: str) -> str:
    """A proxy setting without credentials: scheme, host and port only (or the host list of NO_PROXY)."""
    if "://" not in value:
        return value[:300] if "@" not in value else "(value with credentials, not recorded)"
    try:
        parts = urlsplit(value)
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(malformed proxy URL, not recorded)"
    return f"{parts.scheme}://{parts.hostname or ''}{port}"


def proxy_record(removed_from_browser: tuple[str, ...]) -> dict[str, Any]:
    """Proxy variables of this process and of /etc/environment (names and credential-free values)."""
    environment = [{"name": name, "value": _redacted(value)} for name, value in sorted(os.environ.items())
                   if name.lower() in PROXY_VARIABLES]
    system: dict[str, Any] = {"path": str(SYSTEM_ENVIRONMENT)}
    try:
        lines = _read_config(SYSTEM_ENVIRONMENT).decode("utf-8", "replace").splitlines()
        system["variables"] = [{"name": name.strip(), "value": _redacted(value.strip().strip("'\""))}
                               for name, _, value in (line.partition("=") for line in lines)
                               if name.strip().removeprefix("export ").lower() in PROXY_VARIABLES]
    except FileNotFoundError:
        system["variables"] = []
    except OSError as exc:
        system["status"] = f"unreadable: {exc}"[:300]
    return {"environment": environment, "system": system,
            "removed_from_browser": list(removed_from_browser),
            "raw_fetch": "httpx with trust_env off: environment proxies are not used",
            "browser": "proxy variables removed from the browser's environment at launch; every context "
                       "goes through the capture's own recorder"}


def _route_source(address: str, port: int) -> str:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.connect((address, port))  # UDP: picks the route and source address, sends nothing
        return str(sock.getsockname()[0])


async def egress_record(url: str, resolver: HostResolver) -> dict[str, Any]:
    """The local address of the route to the target, and whether the target sees that address."""
    _, host, port = split_url(url)
    record: dict[str, Any] = {"target_host": host,
                              "method": "source address of the route to the target (UDP connect, no packet)"}
    try:
        target = (await resolver.resolve(host)).addresses[0]
        local = _route_source(target, port)
    except (CaptureError, OSError, IndexError) as exc:
        return {**record, "status": "unknown", "reason": f"no route to the target could be found ({exc})"[:300]}
    record.update(target_address=target, local_address=local)
    local_ip, target_ip = ipaddress.ip_address(local), ipaddress.ip_address(target)
    if local_ip.is_global or not target_ip.is_global:
        # A public source address, or a target on our own network: no translation between us.
        return {**record, "status": "known", "seen_by_target": local}
    return {**record, "status": "unknown", "seen_by_target": None,
            "reason": f"the platform's address {local} is private and the target's is public: a NAT between "
                      "them decides what the target sees"}


async def browser_record(browser: WarmBrowser) -> dict[str, Any]:
    """The browser binary's hash now and at launch, its profile folder, and the extensions it runs."""
    facts = browser.facts
    try:
        sha256_now: str | None = file_sha256(Path(facts.executable))
    except OSError:
        sha256_now = None
    profile = next((f.split("=", 1)[1] for f in facts.flags if f.startswith("--user-data-dir=")), None)
    installed: list[str] = []
    if profile:
        folder = Path(profile) / "Default" / "Extensions"
        installed = sorted(p.name for p in folder.iterdir())[:MAX_LISTED] if folder.is_dir() else []
    record: dict[str, Any] = {}
    try:
        session = await browser.browser.new_browser_cdp_session()
        try:
            targets = (await session.send("Target.getTargets")).get("targetInfos", [])
        finally:
            await session.detach()
        # Every page, worker and background page the browser runs: an extension shows as chrome-extension://.
        record["extension_targets"] = sorted({str(t.get("url", ""))[:300] for t in targets
                                              if str(t.get("url", "")).startswith("chrome-extension://")})
    except PlaywrightError as exc:
        record["extension_targets_unknown"] = f"the browser did not list its targets: {exc.message[:200]}"
    return {**record,"executable": facts.executable, "version": facts.version, "sha256": sha256_now,
            "sha256_at_launch": facts.sha256, "profile_folder": profile,
            "profile": "a temporary folder made for this browser at launch; each capture then gets a new "
                       "incognito context, whose cookies are checked empty before it loads the page",
            "extensions_installed": installed,
            "extensions_disabled_by_flag": "--disable-extensions" in facts.flags,
            "load_extension_flags": [f[:300] for f in facts.flags if f.startswith("--load-extension")]}


async def environment_check(*, evidence_id: str, url: str, browser: WarmBrowser, resolver: HostResolver,
                            references: ClockReferences, egress_proxy: EgressProxy | None = None) -> dict[str, Any]:
    """The whole record, as a JSON-ready dict (``format`` tiezheng-environment-check/1). Never raises.

    Through an egress proxy the target sees the proxy's outgoing address, which this host cannot see:
    the egress item then says so (``unknown``) instead of naming this host's route."""
    made_at = datetime.now(UTC)
    return {
        "format": ENVIRONMENT_FORMAT,
        "evidence_id": evidence_id,
        "made_at": utc_iso(made_at),
        "made": "before the capture's first connection to the target",
        "host": {"name": socket.gethostname()},
        "hosts_file": hosts_record(),
        "resolver": resolver_record(),
        "proxy": proxy_record(browser.facts.removed_env),
        "clock": {"tsa": await tsa_offset(references, evidence_id.encode()),
                  "ntp": await ntp_offset(references)},
        "egress": await egress_record(url, resolver) if egress_proxy is None else {
            "target_host": split_url(url)[1], "status": "unknown", "seen_by_target": None,
            "method": f"none: the capture goes through egress {egress_proxy.name!r} ({egress_proxy.public_url})",
            "reason": f"the capture goes through egress {egress_proxy.name!r}; the target sees that proxy's "
                      "outgoing address, which the platform does not see"},
        "browser": await browser_record(browser),
    }
