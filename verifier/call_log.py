"""The capture's call log (``evidence/capture-log.jsonl``): its line format and its hash chain.

One step is one line of RFC 8785 canonical JSON::

    {"seq": 0, "time": "2026-...Z", "step": "start", "actor": "system", "inputs": {...},
     "outcome": {"status": "ok", ...}, "outputs": [{"path", "sha256", "size"}], "prev_sha256": hex}

``prev_sha256`` is the sha256 of the previous line's bytes (without its newline); the first line
holds ``GENESIS``. The manifest records the sha256 of the last line as ``capture.log_head``, so the
signed manifest fixes the whole chain, the last line included.

This is the pure half: parsing and chain verification of bytes. evidence/call_log.py writes the log
with ``encode_line`` from here, so the writer and the checker cannot disagree on the bytes.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from verifier import canonical
from verifier.court_time import format_time
from verifier.errors import InvalidPackage, VerificationError
from verifier.package import parse_json

GENESIS = "0" * 64
MAX_LOG_BYTES = 4 << 20
MAX_LOG_LINES = 10_000
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class ChainError(VerificationError):
    """The call log's hash chain is broken at ``line`` (1-based)."""

    def __init__(self, line: int, message: str) -> None:
        self.line = line
        super().__init__(f"capture-log line {line}: {message}")


@dataclass(frozen=True)
class LoggedOutput:
    path: str
    sha256: str
    size: int


@dataclass(frozen=True)
class LogLine:
    seq: int
    time: datetime
    step: str
    actor: str
    inputs: Mapping[str, Any]
    outcome: Mapping[str, Any]
    outputs: tuple[LoggedOutput, ...]
    prev_sha256: str
    sha256: str


def parse_time(value: object) -> datetime:
    """Parse a manifest or log time (UTC, microseconds, ``Z``). Raises ValueError."""
    if not isinstance(value, str):
        raise ValueError("time is not a string")
    return datetime.strptime(value, TIME_FORMAT).replace(tzinfo=UTC)


def encode_line(entry: Mapping[str, Any]) -> bytes:
    """The canonical bytes of one log line, without the newline."""
    return canonical.canonical_json(dict(entry))


def line_sha256(line: bytes) -> str:
    return hashlib.sha256(line).hexdigest()


def _outputs(raw: object, number: int) -> tuple[LoggedOutput, ...]:
    if not isinstance(raw, list):
        raise ChainError(number, "outputs is not a list")
    outputs = []
    for item in raw:
        if not (isinstance(item, dict) and isinstance(item.get("path"), str)
                and isinstance(item.get("sha256"), str) and _HEX64.match(item["sha256"])
                and isinstance(item.get("size"), int) and not isinstance(item.get("size"), bool)):
            raise ChainError(number, "an output is not {path, sha256 (64 hex), size}")
        outputs.append(LoggedOutput(item["path"], item["sha256"], item["size"]))
    return tuple(outputs)


def _parse_line(raw_line: bytes, number: int) -> LogLine:
    try:
        entry = parse_json(raw_line, f"capture-log line {number}")
    except InvalidPackage as exc:
        raise ChainError(number, str(exc)) from exc
    if not isinstance(entry, dict):
        raise ChainError(number, "not a JSON object")
    try:
        moment = parse_time(entry.get("time"))
    except ValueError as exc:
        raise ChainError(number, f"time {entry.get('time')!r} is not UTC with microseconds") from exc
    seq, prev = entry.get("seq"), entry.get("prev_sha256")
    if not isinstance(seq, int) or isinstance(seq, bool):
        raise ChainError(number, "seq is not an integer")
    if not isinstance(prev, str) or not _HEX64.match(prev):
        raise ChainError(number, "prev_sha256 is not 64 lowercase hex digits")
    step, actor = entry.get("step"), entry.get("actor")
    inputs, outcome = entry.get("inputs"), entry.get("outcome")
    if not isinstance(step, str) or not isinstance(actor, str):
        raise ChainError(number, "step or actor is not a string")
    if not isinstance(inputs, dict) or not isinstance(outcome, dict):
        raise ChainError(number, "inputs or outcome is not an object")
    return LogLine(seq=seq, time=moment, step=step, actor=actor, inputs=inputs, outcome=outcome,
                   outputs=_outputs(entry.get("outputs"), number), prev_sha256=prev,
                   sha256=line_sha256(raw_line))


def parse_call_log(data: bytes) -> tuple[LogLine, ...]:
    """Parse the log's lines (each strict JSON). Raises ChainError for a malformed line."""
    if len(data) > MAX_LOG_BYTES:
        raise VerificationError(f"capture-log is over {MAX_LOG_BYTES} bytes")
    if not data.endswith(b"\n"):
        raise ChainError(data.count(b"\n") + 1, "the log does not end with a newline (truncated?)")
    raw_lines = data[:-1].split(b"\n")
    if len(raw_lines) > MAX_LOG_LINES:
        raise VerificationError(f"capture-log has more than {MAX_LOG_LINES} lines")
    return tuple(_parse_line(raw, number) for number, raw in enumerate(raw_lines, start=1))


def verify_chain(lines: Sequence[LogLine], *, head: str | None) -> None:
    """Check the hash chain from GENESIS to ``head`` (the manifest's ``capture.log_head``).

    Raises ChainError naming the first line where the chain breaks, with both hashes.
    """
    if not lines:
        raise ChainError(1, "the log is empty")
    expected_prev = GENESIS
    for number, line in enumerate(lines, start=1):
        if line.seq != number - 1:
            raise ChainError(number, f"seq is {line.seq}, expected {number - 1}")
        if line.prev_sha256 != expected_prev:
            raise ChainError(number, f"prev_sha256 is {line.prev_sha256[:16]}…, but the previous line hashes "
                                     f"to {expected_prev[:16]}… (a line was edited, removed or inserted)")
        expected_prev = line.sha256
    if head is not None and expected_prev != head:
        raise ChainError(len(lines), f"the last line hashes to {expected_prev[:16]}…, but the manifest's "
                                     f"log_head is {head[:16]}… (the last line was edited or lines were cut)")


def verify_times(lines: Sequence[LogLine], started: datetime | None, ended: datetime | None) -> None:
    """Check times are monotonic and inside [started, ended]. Raises ChainError."""
    previous: datetime | None = None
    for number, line in enumerate(lines, start=1):
        if previous is not None and line.time < previous:
            raise ChainError(number, f"time {format_time(line.time)} is earlier than the line before it")
        if started is not None and line.time < started:
            raise ChainError(number, f"time {format_time(line.time)} is before the capture started")
        if ended is not None and line.time > ended:
            raise ChainError(number, f"time {format_time(line.time)} is after the capture ended")
        previous = line.time


def verify_steps(lines: Sequence[LogLine], required: Sequence[str], actor: str) -> None:
    """Check every line is by ``actor`` and the ``required`` steps appear in order. Raises ChainError."""
    for number, line in enumerate(lines, start=1):
        if line.actor != actor:
            raise ChainError(number, f"step {line.step!r} was done by {line.actor!r}, not automated by {actor!r}")
    steps = iter(line.step for line in lines)
    for step in required:
        if not any(s == step for s in steps):
            raise ChainError(len(lines), f"required step {step!r} is missing or out of order")
