"""S4, second half: the clean-environment record a web capture makes before it touches the target.

The record (``evidence/environment-check.json``, format ``tiezheng-environment-check/1``) states
facts; this module judges them, item by item, and never takes the capture tool's word that the
machine was clean. Every item that is not clean, or not known, becomes a finding naming it, and S4
warns with it (SF/T 0091-2021 clean check; Evidence Provisions Art. 93 (1), a reliable environment):

- hosts file: any entry beyond the localhost/ip6 defaults and the machine's own names, recomputed
  from the file's text where the record carries it (``verifier.hosts_file``);
- resolver: resolv.conf unreadable, or no DNS server known;
- proxies: any proxy variable in the capture process's or the system's environment;
- clock: no TSA measurement, an NTP server configured but not answering, or an offset beyond
  ``MAX_CLOCK_OFFSET_SECONDS`` plus the measurement's own uncertainty;
- egress: the address the target saw is not known;
- browser: its binary's hash differs from the manifest's, an extension is installed or running, or
  extensions were not turned off.

A record that is there but malformed, or made for another evidence id, is a problem (S4 fails):
the operator signed it. A capture without a record (made before the record existed) warns.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from verifier import canonical
from verifier.capture_format import ENVIRONMENT_FORMAT, ENVIRONMENT_PATH, ENVIRONMENT_STEP
from verifier.checks.capture_material import read_call_log
from verifier.checks.context import Context
from verifier.errors import InvalidPackage, VerificationError
from verifier.hosts_file import non_default_entries

MAX_RECORD_BYTES = 4 << 20
#: Beyond this (plus the measurement's uncertainty) the capture host's clock is not clean.
MAX_CLOCK_OFFSET_SECONDS = 2.0
MAX_NAMED = 3
MAX_TEXT = 80


@dataclass
class Findings:
    """What S4 learns from the record: problems fail, warnings warn, summary goes into a pass."""

    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    summary: list[str] = field(default_factory=list)


def _text(value: Any) -> str:
    text = value if isinstance(value, str) else str(value)
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + "…"


def _named(items: list[str]) -> str:
    more = len(items) - MAX_NAMED
    return ", ".join(items[:MAX_NAMED]) + (f" and {more} more" if more > 0 else "")


def _section(record: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = record.get(key)
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _hosts(hosts: Mapping[str, Any], found: Findings) -> None:
    if hosts.get("status") != "read" or not isinstance(hosts.get("non_default"), list):
        found.warnings.append(f"hosts file unknown ({_text(hosts.get('reason', 'not recorded'))})")
        return
    listed = [e for e in _list(hosts.get("non_default")) if isinstance(e, Mapping)]
    count = hosts.get("non_default_count")
    total = count if isinstance(count, int) and count >= len(listed) else len(listed)
    text, own = hosts.get("text"), [n for n in _list(hosts.get("own_names")) if isinstance(n, str)]
    if isinstance(text, str):
        # The record carries the file: judge it here rather than take the tool's list.
        if canonical.sha256_hex(text.encode()) != hosts.get("sha256"):
            found.warnings.append("hosts file: the text in the record does not hash to the recorded sha256")
        recomputed = non_default_entries(text, own)
        if [e.record() for e in recomputed[:len(listed)]] != [dict(e) for e in listed] or len(recomputed) != total:
            found.warnings.append("hosts file: the record's list of non-default entries does not match the file")
        listed, total = [e.record() for e in recomputed], len(recomputed)
    extra = [f"{_text(e.get('address'))} {' '.join(_text(n) for n in _list(e.get('names')))}" for e in listed]
    if total:
        found.warnings.append(f"hosts file has {total} non-default entr{'y' if total == 1 else 'ies'}: "
                              f"{_named(extra) if extra else 'not listed'}")
    else:
        found.summary.append("hosts file default")


def _resolver(resolver: Mapping[str, Any], found: Findings) -> None:
    if resolver.get("status") != "read":
        found.warnings.append(f"resolver configuration unknown ({_text(resolver.get('reason', 'not recorded'))})")
    elif not _list(resolver.get("dns_servers_used")) and not _list(resolver.get("nameservers")):
        found.warnings.append("resolver unknown: no DNS server is recorded")
    else:
        servers = _list(resolver.get("dns_servers_used")) or _list(resolver.get("nameservers"))
        found.summary.append(f"resolver {_named([_text(s) for s in servers])}")


def _proxies(proxy: Mapping[str, Any], found: Findings) -> None:
    system = _section(proxy, "system")
    if not isinstance(proxy.get("environment"), list) or not isinstance(system.get("variables"), list):
        found.warnings.append("proxy settings unknown (not recorded)")
        return
    named = [f"{_text(v.get('name'))}={_text(v.get('value'))}" for v in _list(proxy.get("environment"))
             if isinstance(v, Mapping)]
    if named:
        found.warnings.append(f"proxy variables set in the capture's environment: {_named(named)}")
    system_named = [f"{_text(v.get('name'))}={_text(v.get('value'))}" for v in _list(system.get("variables"))
                    if isinstance(v, Mapping)]
    if system_named:
        found.warnings.append(f"system proxy set in {_text(system.get('path'))}: {_named(system_named)}")
    if not named and not system_named:
        found.summary.append("no proxy variables")


def _offset(reading: Mapping[str, Any], against: str, found: Findings) -> bool:
    """Judge one measured offset; True when it was measured."""
    offset, uncertainty = reading.get("offset_seconds"), reading.get("uncertainty_seconds")
    if not isinstance(offset, int | float) or not isinstance(uncertainty, int | float) or isinstance(offset, bool):
        found.warnings.append(f"clock against the {against} unknown (no offset recorded)")
        return False
    if abs(offset) > MAX_CLOCK_OFFSET_SECONDS + abs(uncertainty):
        found.warnings.append(f"clock off by {offset:+.3f} s against the {against} (± {uncertainty:.3f} s; "
                              f"more than {MAX_CLOCK_OFFSET_SECONDS:g} s)")
    else:
        found.summary.append(f"clock {offset:+.3f} s (± {uncertainty:.3f} s) against the {against}")
    return True


def _clock(clock: Mapping[str, Any], found: Findings) -> None:
    tsa, ntp = _section(clock, "tsa"), _section(clock, "ntp")
    if tsa.get("status") == "measured":
        _offset(tsa, "TSA", found)
    else:
        found.warnings.append(f"clock against the TSA {_text(tsa.get('status', 'not recorded'))} "
                              f"({_text(tsa.get('reason', 'no reason given'))})")
    if ntp.get("status") == "measured":
        _offset(ntp, "NTP server", found)
    elif ntp.get("status") != "not configured":
        found.warnings.append(f"clock against the NTP server {_text(ntp.get('server', ''))} "
                              f"{_text(ntp.get('status', 'not recorded'))} ({_text(ntp.get('reason', ''))})")


def _egress(egress: Mapping[str, Any], found: Findings) -> None:
    seen = egress.get("seen_by_target")
    if egress.get("status") == "known" and isinstance(seen, str) and seen:
        found.summary.append(f"egress address {_text(seen)}")
    else:
        found.warnings.append(f"egress address unknown ({_text(egress.get('reason', 'not recorded'))})")


def _browser(browser: Mapping[str, Any], manifest_browser: Mapping[str, Any], found: Findings) -> None:
    sha256 = browser.get("sha256")
    if not isinstance(sha256, str):
        found.warnings.append("browser binary hash unknown at the clean check")
    elif sha256 != manifest_browser.get("sha256"):
        found.warnings.append(f"browser binary at the clean check (sha256 {_text(sha256)[:16]}…) is not the one "
                              "the manifest names")
    extensions = ([_text(e) for e in _list(browser.get("extensions_installed"))]
                  + [_text(e) for e in _list(browser.get("extension_targets"))]
                  + [_text(e) for e in _list(browser.get("load_extension_flags"))])
    if not isinstance(browser.get("extensions_installed"), list) or not isinstance(browser.get("extension_targets"),
                                                                                  list):
        reason = browser.get("extension_targets_unknown", "not recorded")
        found.warnings.append(f"browser extensions unknown ({_text(reason)})")
    elif extensions:
        found.warnings.append(f"browser extensions present: {_named(extensions)}")
    elif browser.get("extensions_disabled_by_flag") is not True:
        found.warnings.append("browser extensions were not turned off (--disable-extensions)")
    else:
        found.summary.append("no extensions")


def _logged_first(ctx: Context, found: Findings) -> None:
    try:
        lines = read_call_log(ctx)
    except VerificationError:
        return  # P1 reports a broken log; this only asks whether the record came first
    first = lines[0] if lines else None
    if first is None or first.step != ENVIRONMENT_STEP or not any(o.path == ENVIRONMENT_PATH
                                                                   for o in first.outputs):
        found.warnings.append("the environment record is not the first step of the call log (not made before "
                              "the capture)")


def judge_environment_record(ctx: Context) -> Findings:
    """Read and judge a web capture's clean-environment record. Never raises."""
    found = Findings()
    if ENVIRONMENT_PATH not in {a.path for a in ctx.package.manifest.artifacts}:
        found.warnings.append(f"no environment record ({ENVIRONMENT_PATH}): whether the capture machine was "
                              "clean before the capture is not on record")
        return found
    if ENVIRONMENT_PATH not in ctx.package.entries:
        found.problems.append(f"the manifest lists {ENVIRONMENT_PATH}, but the package lacks it")
        return found
    try:
        record = ctx.package.read_json(ENVIRONMENT_PATH, MAX_RECORD_BYTES)
    except InvalidPackage as exc:
        found.problems.append(f"the environment record is unreadable: {exc}")
        return found
    if not isinstance(record, dict) or record.get("format") != ENVIRONMENT_FORMAT:
        found.problems.append(f"the environment record is not in the {ENVIRONMENT_FORMAT} format")
        return found
    if record.get("evidence_id") != ctx.package.manifest.evidence_id:
        found.problems.append("the environment record was made for another evidence id")
        return found
    _logged_first(ctx, found)
    _hosts(_section(record, "hosts_file"), found)
    _resolver(_section(record, "resolver"), found)
    _proxies(_section(record, "proxy"), found)
    _clock(_section(record, "clock"), found)
    _egress(_section(record, "egress"), found)
    _browser(_section(record, "browser"), _section(ctx.package.manifest.capture, "browser"), found)
    return found
