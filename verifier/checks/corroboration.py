"""P1 (the call log) and P2 (corroboration) for web captures.

P1 checks the log by itself: the hash chain from GENESIS to the manifest's signed ``log_head``,
monotonic times inside the capture window, every step by the system, the required steps in order.

P2 checks that the pieces of evidence agree with each other, independently of the manifest:
1. every artifact's sha256 now equals the sha256 the log recorded the moment it was made (so a file
   swapped later fails here even if the manifest was rewritten to match it);
2. ``source.html`` equals the WARC response body for the final URL, with that response's transfer
   and content codings removed (``verifier.http_body``);
3. the screenshot and the DOM were taken of the same URL, the WARC holds a response for it, and it
   is the final URL the raw fetch reached (a different one warns: the page moved by script);
4. the session video, when the log says one was recorded, is there and lasts the span of the steps it
   covers (``verifier.checks.session_video``);
5. the media index agrees with the WARC and the saved media (``verifier.checks.media``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from urllib.parse import urldefrag

from verifier.call_log import LogLine, verify_chain
from verifier.capture_format import CAPTURE_LOG_PATH, NETWORK_PATH, REQUIRED_STEPS, SOURCE_PATH
from verifier.checks.capture_material import (
    log_fault,
    mapping,
    read_call_log,
    read_network,
    require_capture,
    sequence,
    text,
    warc_records,
)
from verifier.checks.context import Context, Outcome
from verifier.checks.media import media_outcome
from verifier.checks.scripted_steps import scripted_step_facts
from verifier.checks.session_video import session_video_outcome
from verifier.court_time import format_duration, plural
from verifier.errors import InvalidPackage, TiezhengError, VerificationError
from verifier.http_body import HttpFormatError, decode_body, parse_response
from verifier.verdict import Status

MAX_SOURCE_BYTES = 256 << 20
MAX_LISTED = 3
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def _listing(problems: list[str]) -> str:
    more = len(problems) - MAX_LISTED
    return "; ".join(problems[:MAX_LISTED]) + (f"; and {more} more" if more > 0 else "")


def check_log_chain(ctx: Context) -> Outcome:
    """P1: hash chain intact up to the signed head, times monotonic, every step automated."""
    require_capture(ctx, "no capture log; the files were received, not captured")
    lines = read_call_log(ctx)
    head = ctx.package.manifest.capture.get("log_head")
    if not isinstance(head, str) or not _HEX64.match(head):
        return Status.FAIL, "the manifest does not record the capture log's head (capture.log_head)"
    verify_chain(lines, head=head)
    if (fault := log_fault(ctx, lines, REQUIRED_STEPS)) is not None:
        return Status.FAIL, fault
    seconds = (lines[-1].time - lines[0].time).total_seconds()
    return Status.PASS, (f"{plural(len(lines), 'step')} hash-chained from {lines[0].step} to {lines[-1].step} "
                         f"over {format_duration(round(seconds, 3))}, times monotonic, all by the system; "
                         f"head {head[:16]}… is signed")


def _logged_hashes(lines: tuple[LogLine, ...]) -> dict[str, tuple[str, LogLine]]:
    logged: dict[str, tuple[str, LogLine]] = {}
    for line in lines:
        for output in line.outputs:
            logged.setdefault(output.path, (output.sha256, line))
    return logged


def _hash_problems(ctx: Context, lines: tuple[LogLine, ...]) -> list[str]:
    logged = _logged_hashes(lines)
    problems = []
    for artifact in ctx.package.manifest.artifacts:
        if artifact.path == CAPTURE_LOG_PATH:
            continue  # the log cannot hold its own hash; the manifest's log_head covers it (P1)
        if artifact.path not in ctx.package.entries:
            problems.append(f"{artifact.path} is missing")
            continue
        if artifact.path not in logged:
            problems.append(f"{artifact.path} was never logged when it was made")
            continue
        digest, _ = ctx.package.hash_entry(artifact.path)
        sha, line = logged[artifact.path]
        if digest.hex() != sha:
            problems.append(f"{artifact.path} has sha256 {digest.hex()[:16]}…, but step '{line.step}' logged "
                            f"{sha[:16]}… when it was made")
    return problems


def _step_url(lines: tuple[LogLine, ...], step: str) -> str:
    line = next((item for item in lines if item.step == step), None)
    if line is None or not isinstance(line.inputs.get("url"), str):
        raise VerificationError(f"the capture log has no '{step}' step naming its URL")
    return str(line.inputs["url"])


def _source_outcome(ctx: Context, final_url: str, browser_url: str,
                    labels: Mapping[str, str]) -> tuple[list[str], list[str], set[str]]:
    """Compare source.html with the WARC responses for the final URL; also list the URLs with responses."""
    try:
        source = ctx.package.read(SOURCE_PATH, MAX_SOURCE_BYTES)
    except (KeyError, InvalidPackage) as exc:
        return [f"source.html cannot be read: {exc}"], [], set()
    wanted = urldefrag(final_url).url
    responded: set[str] = set()
    matched: list[str] = []
    compared = 0
    problems: list[str] = []
    for record in warc_records(ctx, lambda h: h.get("warc-type") == "response"
                               and h.get("warc-target-uri") == wanted):
        if record.type != "response":
            continue
        responded.add(record.target_uri)
        if record.block is None:
            continue
        compared += 1
        try:
            body = decode_body(parse_response(record.block), limit=MAX_SOURCE_BYTES)
        except HttpFormatError as exc:
            problems.append(f"the WARC response for the final URL cannot be decoded: {exc}")
            continue
        if body.data == source:
            matched.append(labels.get(record.record_id, "a recorded response"))
    if compared == 0:
        problems.append(f"the WARC holds no response for the final URL {wanted[:120]}")
    elif not matched:
        problems.append(f"source.html (sha256 {hashlib.sha256(source).hexdigest()[:16]}…) differs from all "
                        f"{compared} WARC response bodies for the final URL")
    if urldefrag(browser_url).url not in responded and urldefrag(browser_url).url != wanted:
        responded |= _responded_urls(ctx, urldefrag(browser_url).url)
    return problems, matched, responded


def _responded_urls(ctx: Context, url: str) -> set[str]:
    return {r.target_uri for r in warc_records(ctx, lambda _h: False)
            if r.type == "response" and r.target_uri == url}


def _labels(network: Mapping[str, object]) -> dict[str, str]:
    labels: dict[str, str] = {}
    fetch = mapping(network.get("fetch"), "network.json fetch")
    for hop in sequence(fetch.get("hops"), "network.json fetch.hops"):
        if isinstance(hop, dict) and isinstance(hop.get("warc_response_id"), str):
            labels[hop["warc_response_id"]] = "the raw fetch's response"
    browser = network.get("browser")
    main = browser.get("main_document") if isinstance(browser, dict) else None
    if isinstance(main, dict) and isinstance(main.get("warc_response_id"), str):
        labels[main["warc_response_id"]] = "the browser's response"
    return labels


def check_corroborates(ctx: Context) -> Outcome:
    """P2: logged hashes hold, source.html = the WARC body of the final URL, same URL everywhere."""
    require_capture(ctx, "no capture log or WARC traffic to corroborate")
    try:
        lines = read_call_log(ctx)
    except TiezhengError as exc:
        return Status.FAIL, f"the capture log is unreadable, so no logged hash can be compared: {exc}"
    problems = _hash_problems(ctx, lines)
    video_problems, video = session_video_outcome(ctx, lines)
    problems += video_problems
    if video:
        ctx.facts["session_video"] = video
    steps = scripted_step_facts(lines)
    if steps:
        ctx.facts["scripted_steps"] = steps
    target = ctx.package.manifest.target
    final_url = text(target.get("final_url"), "manifest target.final_url")
    shot_url, dom_url = _step_url(lines, "screenshot"), _step_url(lines, "dom")
    labels = _labels(read_network(ctx)) if NETWORK_PATH in ctx.package.entries else {}
    source_problems, matched, responded = _source_outcome(ctx, final_url, shot_url, labels)
    problems += source_problems
    media_problems, media_clause = media_outcome(ctx)
    problems += media_problems
    if shot_url != dom_url:
        problems.append(f"the screenshot was taken of {shot_url[:120]} but the DOM of {dom_url[:120]}")
    if urldefrag(shot_url).url not in responded:
        problems.append(f"the WARC holds no response for the page the screenshot shows ({shot_url[:120]})")
    if problems:
        return Status.FAIL, _listing(problems)
    sources = " and ".join(dict.fromkeys(matched))
    made = len(ctx.package.manifest.artifacts) - 1
    reason = (f"{plural(made, 'artifact')} {'matches the hash' if made == 1 else 'match the hashes'} logged when "
              "made; " + (f"{video}; " if video else "")
              + f"source.html equals {sources} for the final URL; screenshot, DOM and WARC name the same page"
              + (f"; {media_clause}" if media_clause else ""))
    if urldefrag(shot_url).url != urldefrag(final_url).url:
        return Status.WARN, (f"{reason}, but the browser ended at {shot_url[:120]} while the raw fetch ended at "
                             f"{final_url[:120]} (moved by script?)")
    return Status.PASS, reason
