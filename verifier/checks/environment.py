"""S4, capture environment: the manifest states what ran, in what state, through what.

Passes when the manifest records: every tool with a name, a version and a sha256; the browser's
executable, version, sha256 and actual flags; a fresh profile; no proxy but the capture tool's own
recorder, with all browser traffic seen going through it; a clock source; start and end times in
order; no session of the requester's and no egress proxy (each warns, named:
"authenticated as <account>, session supplied by the requester", "through egress <name> (<url>)");
and a clean-environment record made before the capture whose every item is clean and known
(``verifier.checks.environment_record``). An unclean or unknown item warns and is named; so does a
capture without the record. An upload warns: its files were not captured by the platform at all.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from verifier.capture_format import RECORDER_KIND
from verifier.checks.capture_material import capture_times
from verifier.checks.context import Context, Outcome, Skip
from verifier.checks.environment_record import judge_environment_record
from verifier.checks.stream import check_stream_environment
from verifier.court_time import plural
from verifier.verdict import Status

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
MAX_LISTED = 4


def _tool_problems(tools: Any) -> list[str]:
    if not isinstance(tools, list) or not tools:
        return ["no tools are recorded"]
    problems = []
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict):
            problems.append(f"tools[{i}] is not an object")
            continue
        name = tool.get("name")
        if not isinstance(name, str) or not name:
            problems.append(f"tools[{i}] has no name")
        if not isinstance(tool.get("version"), str) or not tool.get("version"):
            problems.append(f"tool {name} has no version")
        if not isinstance(tool.get("sha256"), str) or not _HEX64.match(tool["sha256"]):
            problems.append(f"tool {name} has no sha256")
    return problems


def _browser_problems(browser: Any) -> list[str]:
    if not isinstance(browser, Mapping):
        return ["no browser is recorded"]
    problems = []
    for key in ("executable", "version"):
        if not isinstance(browser.get(key), str) or not browser.get(key):
            problems.append(f"the browser's {key} is not recorded")
    if not isinstance(browser.get("sha256"), str) or not _HEX64.match(browser["sha256"]):
        problems.append("the browser binary's sha256 is not recorded")
    flags = browser.get("flags")
    if not isinstance(flags, list) or not flags or not all(isinstance(f, str) for f in flags):
        problems.append("the browser flags are not recorded")
    if browser.get("fresh_profile") is not True:
        problems.append("the browser profile was not fresh")
    proxy = browser.get("proxy")
    if not isinstance(proxy, Mapping):
        problems.append("the proxy setting is not recorded")
    else:
        if proxy.get("kind") != RECORDER_KIND or proxy.get("part_of_capture_tool") is not True:
            problems.append(f"the proxy is not the capture tool's own recorder ({RECORDER_KIND})")
        if proxy.get("third_party_proxy") is not False:
            problems.append("a third-party proxy was (or may have been) in the path")
        if proxy.get("all_traffic_via_recorder") is not True:
            problems.append("some browser traffic did not go through the recorder")
    return problems


def _requester_choices(capture: Mapping[str, Any], problems: list[str]) -> list[str]:
    """Warnings for what the requester chose and the platform cannot vouch for: a logged-in session
    (``capture.session``) and an egress proxy (``capture.egress``). Malformed records are problems."""
    warnings = []
    session = capture.get("session")
    if session is not None:
        account = session.get("account") if isinstance(session, Mapping) else None
        digest = session.get("storage_state_sha256") if isinstance(session, Mapping) else None
        if not isinstance(account, str) or not isinstance(digest, str) or not _HEX64.match(digest):
            problems.append("capture.session is recorded but lacks its account or storage_state_sha256")
        else:
            warnings.append(f"authenticated as {account!r}, session supplied by the requester "
                            f"(storage state sha256 {digest[:16]}…; the platform did not log in itself)")
    egress = capture.get("egress")
    if egress is not None:
        name = egress.get("name") if isinstance(egress, Mapping) else None
        url = egress.get("url") if isinstance(egress, Mapping) else None
        if not isinstance(name, str) or not isinstance(url, str):
            problems.append("capture.egress is recorded but lacks its name or url")
        else:
            warnings.append(f"through egress {name!r} ({url}): an HTTP proxy of the operator's relayed every "
                            "connection to the target (TLS end to end inside its tunnels; plain HTTP it could alter)")
    return warnings


def _listing(items: list[str]) -> str:
    more = len(items) - MAX_LISTED
    return "; ".join(items[:MAX_LISTED]) + (f"; and {more} more" if more > 0 else "")


def check_capture_environment(ctx: Context) -> Outcome:
    """S4: tools with versions and hashes, fresh profile, no third-party proxy; uploads warn."""
    manifest = ctx.package.manifest
    if manifest.kind == "upload":
        return Status.WARN, "not captured by the platform: the files were uploaded by the requester"
    if manifest.kind == "log-export":
        return Status.WARN, "not captured by the platform: the requester's systems sent the events to the log"
    if manifest.kind == "notice-reply":
        return Status.WARN, "not received by the platform: the requester imported the reply (N1 checks its origin)"
    if manifest.kind == "notice":
        raise Skip("notice: sent by the platform's mailer, not captured with a browser; the SMTP transcript is sealed")
    capture = manifest.capture
    if manifest.kind == "stream":
        return check_stream_environment(ctx, _tool_problems(capture.get("tools")))
    problems = _tool_problems(capture.get("tools")) + _browser_problems(capture.get("browser"))
    if not isinstance(capture.get("clock_source"), Mapping):
        problems.append("the clock source is not recorded")
    started, ended = capture_times(ctx)
    if started is None or ended is None:
        problems.append("start and end times (UTC, microseconds) are not both recorded")
    elif ended < started:
        problems.append("the capture ended before it started")
    record = judge_environment_record(ctx)
    problems += record.problems
    choices = _requester_choices(capture, problems)
    if problems:
        return Status.FAIL, _listing(problems)
    browser = capture["browser"]
    tools = capture["tools"]
    ctx.facts["environment"] = {"browser": f"chromium {browser['version']}", "browser_sha256": browser["sha256"],
                                "tools": [f"{t['name']} {t['version']}" for t in tools],
                                "clean_check": {"unclean_or_unknown": record.warnings, "clean": record.summary}}
    unclean = [f"capture environment not shown clean: {record.warnings[0]}", *record.warnings[1:]] \
        if record.warnings else []
    if choices or unclean:
        return Status.WARN, _listing(choices + unclean)
    return Status.PASS, (f"chromium {browser['version']} (sha256 {browser['sha256'][:16]}…) and "
                         f"{plural(len(tools), 'tool')} "
                         f"recorded with versions and hashes; fresh profile; no proxy but the capture tool's own "
                         f"recorder, which saw all browser traffic; clean check before capture: "
                         f"{', '.join(record.summary)}")
