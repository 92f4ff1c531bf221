"""Reading a web capture's own files for S3, S4, P1 and P2: network.json, the call log, the WARC.

Each loader raises ``Skip`` for an upload (it has no such files, by design) and ``VerificationError``
when a capture lacks the file or the file is malformed, so the check fails with the reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from verifier.call_log import LogLine, parse_call_log, parse_time, verify_steps, verify_times
from verifier.capture_format import CAPTURE_LOG_PATH, NETWORK_FORMAT, NETWORK_PATH, SYSTEM_ACTOR, WARC_PATH
from verifier.checks.context import Context, Skip
from verifier.errors import InvalidPackage, VerificationError
from verifier.warc_reader import WarcRecord, iter_warc

MAX_NETWORK_BYTES = 16 << 20


def require_capture(ctx: Context, upload_reason: str) -> None:
    """Raise Skip with ``upload_reason`` unless the package is a web capture."""
    if ctx.package.manifest.kind != "web-capture":
        raise Skip(f"{ctx.package.manifest.kind}: {upload_reason}")


def _require_entry(ctx: Context, name: str) -> None:
    if name not in ctx.package.entries:
        raise VerificationError(f"the capture has no {name}")


def read_network(ctx: Context) -> Mapping[str, Any]:
    """The parsed evidence/network.json. Raises VerificationError."""
    _require_entry(ctx, NETWORK_PATH)
    try:
        data = ctx.package.read_json(NETWORK_PATH, MAX_NETWORK_BYTES)
    except InvalidPackage as exc:
        raise VerificationError(f"network.json: {exc}") from exc
    if not isinstance(data, dict) or data.get("format") != NETWORK_FORMAT:
        raise VerificationError(f"network.json is not in the {NETWORK_FORMAT} format")
    return data


def read_call_log(ctx: Context) -> tuple[LogLine, ...]:
    """The parsed capture-log lines (not yet chain-checked). Raises VerificationError."""
    _require_entry(ctx, CAPTURE_LOG_PATH)
    try:
        data = ctx.package.read(CAPTURE_LOG_PATH)
    except InvalidPackage as exc:
        raise VerificationError(f"capture-log: {exc}") from exc
    return parse_call_log(data)


def warc_records(ctx: Context, want_block: Callable[[Mapping[str, str]], bool]) -> Iterator[WarcRecord]:
    """Stream the WARC's records; blocks only where ``want_block(headers)``. Raises VerificationError."""
    _require_entry(ctx, WARC_PATH)
    with ctx.package.open(WARC_PATH) as stream:
        yield from iter_warc(stream, want_block=want_block)


def capture_times(ctx: Context) -> tuple[datetime | None, datetime | None]:
    """The manifest's capture started_at and ended_at, or None where absent or malformed."""
    capture = ctx.package.manifest.capture
    times: list[datetime | None] = []
    for key in ("started_at", "ended_at"):
        try:
            times.append(parse_time(capture.get(key)))
        except ValueError:
            times.append(None)
    return times[0], times[1]


def log_fault(ctx: Context, lines: tuple[LogLine, ...], required_steps: Sequence[str]) -> str | None:
    """P1's part common to every capture log, after its chain: times monotonic within the capture, the
    ``required_steps`` present and every step by the system (these raise), and the log started for
    this evidence (else the returned reason)."""
    started, ended = capture_times(ctx)
    verify_times(lines, started, ended)
    verify_steps(lines, required_steps, SYSTEM_ACTOR)
    if lines[0].inputs.get("evidence_id") != ctx.package.manifest.evidence_id:
        return "the capture log was started for another evidence id"
    return None


def mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise VerificationError(f"{where} is missing or not an object")
    return value


def sequence(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise VerificationError(f"{where} is missing or not a list")
    return value


def text(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise VerificationError(f"{where} is missing or not a string")
    return value
