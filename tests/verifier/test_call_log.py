"""The call log's hash chain: written by evidence.call_log, judged by verifier.call_log."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from evidence.call_log import CallLog, output_record
from verifier.call_log import (
    GENESIS,
    ChainError,
    encode_line,
    line_sha256,
    parse_call_log,
    parse_time,
    verify_chain,
    verify_steps,
    verify_times,
)

STEPS = ("start", "resolve", "fetch", "package")


@pytest.fixture()
def log(tmp_path: Path) -> tuple[bytes, str]:
    artifact = tmp_path / "source.html"
    artifact.write_bytes(b"<html></html>")
    writer = CallLog(tmp_path / "capture-log.jsonl")
    for step in STEPS:
        outputs = [output_record("evidence/source.html", artifact)] if step == "fetch" else []
        writer.record(step, inputs={"evidence_id": "tz-test"} if step == "start" else {}, outputs=outputs)
    writer.close()
    return (tmp_path / "capture-log.jsonl").read_bytes(), writer.head


def _lines(data: bytes) -> list[dict]:  # type: ignore[type-arg]
    return [json.loads(x) for x in data.splitlines()]


def _join(lines: list[dict]) -> bytes:  # type: ignore[type-arg]
    return b"\n".join(encode_line(x) for x in lines) + b"\n"


def test_written_log_verifies(log: tuple[bytes, str]) -> None:
    data, head = log
    lines = parse_call_log(data)
    verify_chain(lines, head=head)
    verify_times(lines, lines[0].time, lines[-1].time)
    verify_steps(lines, STEPS, "system")
    assert lines[0].prev_sha256 == GENESIS and lines[-1].sha256 == head
    assert lines[2].outputs[0].path == "evidence/source.html"


@pytest.mark.parametrize(("edit", "error"), [
    (lambda ls: ls[1]["outcome"].update(status="forged") or ls, r"line 3: prev_sha256"),
    (lambda ls: [ls[0], *ls[2:]], r"line 2: seq is 2"),
    (lambda ls: [ls[0], ls[2], ls[1], ls[3]], r"line 2: seq is 2"),
    (lambda ls: ls[:-1], r"log_head"),
    (lambda ls: [*ls[:-1], {**ls[-1], "outcome": {"status": "ok", "x": 1}}], r"log_head"),
])
def test_edits_break_the_chain(log: tuple[bytes, str], edit, error: str) -> None:  # type: ignore[no-untyped-def]
    data, head = log
    with pytest.raises(ChainError, match=error):
        verify_chain(parse_call_log(_join(edit(_lines(data)))), head=head)


def test_consistent_rechaining_still_needs_the_signed_head(log: tuple[bytes, str]) -> None:
    data, head = log
    lines = _lines(data)
    lines[2]["outputs"][0]["sha256"] = "ab" * 32
    prev = GENESIS
    for line in lines:
        line["prev_sha256"] = prev
        prev = line_sha256(encode_line(line))
    with pytest.raises(ChainError, match="log_head"):
        verify_chain(parse_call_log(_join(lines)), head=head)


def test_times_actor_and_steps(log: tuple[bytes, str]) -> None:
    data, _ = log
    lines = parse_call_log(data)
    with pytest.raises(ChainError, match="before the capture started"):
        verify_times(lines, lines[0].time + timedelta(seconds=1), None)
    backwards = _lines(data)
    backwards[2]["time"] = "2000-01-01T00:00:00.000000Z"
    with pytest.raises(ChainError, match=r"line 3: time .* earlier"):
        verify_times(parse_call_log(_join(backwards)), None, None)
    human = _lines(data)
    human[1]["actor"] = "alice"
    with pytest.raises(ChainError, match="not automated"):
        verify_steps(parse_call_log(_join(human)), STEPS, "system")
    with pytest.raises(ChainError, match="'navigate' is missing"):
        verify_steps(lines, (*STEPS, "navigate"), "system")


@pytest.mark.parametrize(("data", "error"), [
    (b'{"seq": 0}', "does not end with a newline"),
    (b"not json\n", "not valid JSON"),
    (b'{"seq": 0, "time": "yesterday"}\n', "not UTC with microseconds"),
    (b'[1]\n', "not a JSON object"),
])
def test_malformed_logs(data: bytes, error: str) -> None:
    with pytest.raises(ChainError, match=error):
        parse_call_log(data)


def test_parse_time_is_strict() -> None:
    assert parse_time("2026-01-02T03:04:05.000006Z").microsecond == 6
    with pytest.raises(ValueError):
        parse_time("2026-01-02T03:04:05Z")
