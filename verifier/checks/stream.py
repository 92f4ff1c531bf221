"""V1 and the stream side of S4 and P2, for packages of kind ``stream`` (DESIGN.md §5).

V1 answers: is this the stream as it was served, in order, with every missing span named?
1. The call log's hash chain holds from GENESIS to the signed ``capture.log_head``.
2. Every logged segment (and init segment) is in the WARC: the response record the line names, for
   the URL it names, whose body has the logged sha256 and size. A segment swapped in the WARC, or a
   log line rewritten, fails here.
3. Each segment's hash was logged within ``MAX_LOG_DELAY_SECONDS`` of its arrival (warns otherwise).
4. Media sequence numbers rise one by one. A jump is a gap: the recorder logs each gap it sees (with
   the restart between two parts of one recording), and V1 reports it naming the missing span. A
   jump the recorder did not log fails: the recorder never drops a span silently.
5. The segment durations add up to the span the manifest claims (``capture.stream.media_seconds``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from verifier.call_log import LogLine, parse_time, verify_chain
from verifier.capture_format import CAPTURE_LOG_PATH
from verifier.checks.capture_material import capture_times, log_fault, read_call_log, warc_records
from verifier.checks.context import Context, Outcome, Skip
from verifier.court_time import format_duration, plural
from verifier.errors import VerificationError
from verifier.http_body import HttpFormatError, decode_body, parse_response
from verifier.stream_format import (
    DURATION_SLACK_PER_SEGMENT,
    DURATION_SLACK_SECONDS,
    GAP_STEP,
    MAX_LOG_DELAY_SECONDS,
    REQUIRED_STEPS,
    SEGMENT_STEP,
    START_STEP,
    STREAM_KIND,
)
from verifier.verdict import Status

#: One media segment's body; live segments are seconds long, a progressive file may be larger.
MAX_SEGMENT_BYTES = 256 << 20
MAX_LISTED = 4
#: Steps whose lines carry a response body the WARC must hold with the logged hash.
MEDIA_STEPS = (SEGMENT_STEP, "init")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class LoggedMedia:
    """One ``segment`` or ``init`` line of the log, read strictly."""

    line: int
    step: str
    url: str
    sha256: str
    size: int
    warc_response_id: str
    sequence: int | None
    duration: float
    delay: float | None


def _listing(items: list[str]) -> str:
    more = len(items) - MAX_LISTED
    return "; ".join(items[:MAX_LISTED]) + (f"; and {more} more" if more > 0 else "")


def require_stream(ctx: Context) -> None:
    if ctx.package.manifest.kind != STREAM_KIND:
        raise Skip("not a stream recording")


def _media(number: int, line: LogLine) -> LoggedMedia:
    inputs = line.inputs
    url, digest, size, record = (inputs.get(k) for k in ("url", "sha256", "size", "warc_response_id"))
    if not (isinstance(url, str) and isinstance(digest, str) and _HEX64.match(digest) and type(size) is int
            and isinstance(record, str)):
        raise VerificationError(f"capture-log line {number}: a {line.step} line without url, sha256, size and "
                                "warc_response_id")
    sequence, duration = inputs.get("sequence"), inputs.get("duration", 0)
    if line.step == SEGMENT_STEP and (type(sequence) is not int or not isinstance(duration, int | float)
                                      or isinstance(duration, bool) or duration < 0):
        raise VerificationError(f"capture-log line {number}: a segment line without a media sequence number "
                                "and a duration")
    delay = None
    if isinstance(inputs.get("arrived_at"), str):
        try:
            delay = (line.time - parse_time(inputs["arrived_at"])).total_seconds()
        except ValueError as exc:
            raise VerificationError(f"capture-log line {number}: arrived_at is not a UTC time") from exc
    return LoggedMedia(line=number, step=line.step, url=url, sha256=digest, size=size, warc_response_id=record,
                       sequence=sequence if line.step == SEGMENT_STEP else None,
                       duration=float(duration) if line.step == SEGMENT_STEP else 0.0, delay=delay)


def read_stream_log(ctx: Context) -> tuple[tuple[LogLine, ...], list[LoggedMedia]]:
    """The log, chain-checked to the signed head, and its media lines. Raises VerificationError."""
    lines = read_call_log(ctx)
    head = ctx.package.manifest.capture.get("log_head")
    if not isinstance(head, str) or not _HEX64.match(head):
        raise VerificationError("the manifest does not record the capture log's head (capture.log_head)")
    verify_chain(lines, head=head)
    media = [_media(number, line) for number, line in enumerate(lines, 1) if line.step in MEDIA_STEPS]
    return lines, media


def _warc_problems(ctx: Context, media: list[LoggedMedia]) -> list[str]:
    """Each logged body must be in the WARC record named, for the URL named, with the logged hash."""
    wanted = {m.warc_response_id: m for m in media}
    problems: list[str] = []
    found: set[str] = set()
    for record in warc_records(ctx, lambda h: h.get("warc-record-id") in wanted):
        logged = wanted.get(record.record_id)
        if logged is None or record.block is None or record.type != "response":
            continue
        found.add(record.record_id)
        name = _name(logged)
        if record.target_uri != logged.url:
            problems.append(f"{name}: the WARC record is for {record.target_uri[:100]}, the log names "
                            f"{logged.url[:100]}")
            continue
        try:
            body = decode_body(parse_response(record.block), limit=MAX_SEGMENT_BYTES).data
        except HttpFormatError as exc:
            problems.append(f"{name}: the WARC response cannot be decoded: {exc}")
            continue
        digest = hashlib.sha256(body).hexdigest()
        if digest != logged.sha256 or len(body) != logged.size:
            problems.append(f"{name}: the WARC holds {len(body)} bytes with sha256 {digest[:16]}…, the log "
                            f"recorded {logged.size} bytes with sha256 {logged.sha256[:16]}… on arrival")
    for logged in media:
        if logged.warc_response_id not in found:
            problems.append(f"{_name(logged)}: the WARC has no response record {logged.warc_response_id[:60]}")
    return problems


def _name(media: LoggedMedia) -> str:
    if media.sequence is None:
        return f"the {media.step} segment (log line {media.line})"
    return f"segment {media.sequence} (log line {media.line})"


def _span(first: int, last: int) -> str:
    return f"segment {first}" if first == last else f"segments {first}–{last}"


def _logged_gaps(lines: tuple[LogLine, ...]) -> dict[tuple[int, int], Mapping[str, Any]]:
    gaps: dict[tuple[int, int], Mapping[str, Any]] = {}
    for number, line in enumerate(lines, 1):
        if line.step != GAP_STEP:
            continue
        first, last = line.inputs.get("first_missing"), line.inputs.get("last_missing")
        if first is None and last is None:
            continue  # a restart that lost no segment: reported from the start line
        if type(first) is not int or type(last) is not int or last < first:
            raise VerificationError(f"capture-log line {number}: a gap line without first_missing ≤ last_missing")
        gaps[(first, last)] = line.inputs
    return gaps


def _sequence_findings(lines: tuple[LogLine, ...], media: list[LoggedMedia]) -> tuple[list[str], list[str]]:
    """(gaps reported, problems): jumps in the media sequence, each matched with a logged gap."""
    logged = _logged_gaps(lines)
    start = lines[0].inputs if lines[0].step == START_STEP else {}
    previous = start.get("previous_last_sequence")
    gaps: list[str] = []
    problems: list[str] = []
    seen: set[tuple[int, int]] = set()
    if type(previous) is int and any(line.step == GAP_STEP and line.inputs.get("between_parts") for line in lines):
        gaps.append(_restart_text(start, lines))
    for item in media:
        if item.sequence is None:
            continue
        if type(previous) is int:
            if item.sequence <= previous:
                problems.append(f"segment {item.sequence} (log line {item.line}) does not follow segment "
                                f"{previous}: the sequence goes back or repeats")
            elif item.sequence > previous + 1:
                span = (previous + 1, item.sequence - 1)
                seen.add(span)
                if span in logged:
                    gaps.append(f"{_span(*span)} missing ({logged[span].get('reason', 'reason not given')})")
                else:
                    problems.append(f"{_span(*span)} missing and the recorder logged no gap for them")
        previous = item.sequence
    problems += [f"a gap of {_span(*span)} is logged but no segment follows it" for span in logged
                 if span not in seen]
    return gaps, problems


def _restart_text(start: Mapping[str, Any], lines: tuple[LogLine, ...]) -> str:
    """The span between the previous part and this one, as the first gap line states it."""
    line = next((item for item in lines if item.step == GAP_STEP and item.inputs.get("between_parts")), None)
    down = line.inputs.get("seconds_not_recording") if line is not None else None
    how = f" for {format_duration(round(down, 1))}" if isinstance(down, int | float) else ""
    return (f"this part continues part {start.get('part', 1) - 1 if type(start.get('part')) is int else '?'} "
            f"(which ended at segment {start.get('previous_last_sequence')}) after the recorder stopped{how}")


def _duration_findings(ctx: Context, media: list[LoggedMedia]) -> tuple[float, list[str]]:
    stream = ctx.package.manifest.capture.get("stream")
    segments = [m for m in media if m.sequence is not None]
    total = sum(m.duration for m in segments)
    if not isinstance(stream, dict):
        return total, ["the manifest has no capture.stream record"]
    claimed = stream.get("media_seconds")
    if not isinstance(claimed, int | float) or isinstance(claimed, bool):
        return total, ["the manifest claims no span (capture.stream.media_seconds)"]
    problems = []
    slack = DURATION_SLACK_SECONDS + DURATION_SLACK_PER_SEGMENT * len(segments)
    if abs(total - claimed) > slack:
        problems.append(f"the segment durations add up to {total:.3f} s, but the manifest claims {claimed:.3f} s")
    if stream.get("segments") != len(segments):
        problems.append(f"the manifest claims {stream.get('segments')} segments, the log holds {len(segments)}")
    return total, problems


def check_stream(ctx: Context) -> Outcome:
    """V1: segment chain intact, no unreported gap, durations add up; a reported gap warns, naming it."""
    require_stream(ctx)
    lines, media = read_stream_log(ctx)
    segments = [m for m in media if m.sequence is not None]
    problems = _warc_problems(ctx, media)
    gaps, sequence_problems = _sequence_findings(lines, media)
    total, duration_problems = _duration_findings(ctx, media)
    problems += sequence_problems + duration_problems
    slow = [m for m in media if m.delay is not None and not 0 <= m.delay <= MAX_LOG_DELAY_SECONDS]
    first = segments[0].sequence if segments else None
    last = segments[-1].sequence if segments else None
    ctx.facts["stream"] = {"segments": len(segments), "first": first, "last": last, "media_seconds": round(total, 3),
                           "gaps": len(gaps), "problems": len(problems)}
    if problems:
        return Status.FAIL, _listing(problems)
    if not segments:
        return Status.FAIL, "the recording holds no media segment"
    summary = (f"{plural(len(segments), 'segment')} ({_span(first or 0, last or 0)}, "
               f"{format_duration(round(total, 3))} of media) hash-chained in the log on arrival and found "
               f"byte for byte in the WARC; durations add up to the claimed span")
    warnings = [f"gap: {g}" for g in gaps]
    warnings += [f"{_name(m)}: hash logged {m.delay:.3f} s after arrival (over {MAX_LOG_DELAY_SECONDS:g} s)"
                 for m in slow]
    if warnings:
        return Status.WARN, f"{summary}; but {_listing(warnings)}"
    return Status.PASS, f"{summary}; no gap in the media sequence"


# -- the stream side of P1, P2 and S4 ------------------------------------------------------------

def check_stream_log(ctx: Context) -> Outcome:
    """P1 for a stream: the chain to the signed head, monotonic times, every step automated."""
    lines, media = read_stream_log(ctx)
    if (fault := log_fault(ctx, lines, REQUIRED_STEPS)) is not None:
        return Status.FAIL, fault
    seconds = (lines[-1].time - lines[0].time).total_seconds()
    return Status.PASS, (f"{plural(len(lines), 'step')} ({plural(len(media), 'segment')} logged on arrival) "
                         f"hash-chained over {format_duration(round(seconds, 3))}, times monotonic, all by the "
                         f"system; head {lines[-1].sha256[:16]}… is signed")


def check_stream_corroboration(ctx: Context) -> Outcome:
    """P2 for a stream: every artifact has the hash logged when it was made (the remux with its
    command); V1 compares the segments with the WARC."""
    lines = read_call_log(ctx)
    logged: dict[str, tuple[str, LogLine]] = {}
    for line in lines:
        for output in line.outputs:
            logged.setdefault(output.path, (output.sha256, line))
    problems = []
    for artifact in ctx.package.manifest.artifacts:
        if artifact.path == CAPTURE_LOG_PATH or artifact.path not in ctx.package.entries:
            continue  # the log's own hash is the signed head (P1); a missing file is P3's finding
        if artifact.role in ("warc", "wacz-pages", "wacz-index", "wacz-index-summary"):
            continue  # written record by record as the stream ran; V1 checks what the log says is in it
        entry = logged.get(artifact.path)
        if entry is None:
            problems.append(f"{artifact.path} was never logged when it was made")
            continue
        digest, _ = ctx.package.hash_entry(artifact.path)
        if digest.hex() != entry[0]:
            problems.append(f"{artifact.path} has sha256 {digest.hex()[:16]}…, but step '{entry[1].step}' logged "
                            f"{entry[0][:16]}… when it was made")
        if entry[1].step == "remux" and not (entry[1].inputs.get("command") and entry[1].inputs.get("tool")):
            problems.append(f"{artifact.path} is derived, but its remux step does not record the command and tool")
    if problems:
        return Status.FAIL, _listing(problems)
    return Status.PASS, ("every derived artifact matches the hash logged when it was made, with the command and "
                         "tool version that derived it; the segments are corroborated against the WARC by V1")


def check_stream_environment(ctx: Context, tool_problems: list[str]) -> Outcome:
    """S4 for a stream: tools with versions and hashes, a clock source, times in order, no proxy."""
    capture = ctx.package.manifest.capture
    problems = list(tool_problems)
    if not isinstance(capture.get("clock_source"), Mapping):
        problems.append("the clock source is not recorded")
    proxy = capture.get("proxy")
    if not isinstance(proxy, Mapping) or proxy.get("third_party_proxy") is not False:
        problems.append("the recording does not state that no third-party proxy was in the path")
    started, ended = capture_times(ctx)
    if started is None or ended is None:
        problems.append("start and end times (UTC, microseconds) are not both recorded")
    elif ended < started:
        problems.append("the capture ended before it started")
    if problems:
        return Status.FAIL, _listing(problems)
    tools = [f"{t['name']} {t['version']}" for t in capture["tools"]]
    ctx.facts["environment"] = {"tools": tools}
    return Status.PASS, (f"stream recorded by the platform's own HTTP client, no third-party proxy; "
                         f"{plural(len(tools), 'tool')} recorded with versions and hashes ({', '.join(tools)})")
