"""A recording on disk: its plan, its parts, and how a part killed mid-stream is picked up again.

A recording lives in ``<streams>/<recording-id>/``. ``recording.json`` holds the plan (URL, the
wall-clock end, matter) and which part is running. Each part has its own folder with the files of
one package being made: the call log, the WARC and the segment bodies kept for the remux.

Everything a part holds is flushed to the operating system as it is written (one log line, one
WARC exchange), so a SIGKILL loses at most the line or record being written. On restart,
``reopen_part`` cuts that torn tail: the log back to its last whole line, the WARC back to the end
of the last exchange the log names. What was logged is therefore exactly what the part keeps, and
the part is packaged as it stands; the recording then goes on as a new part linked to it.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from evidence.call_log import CallLog
from evidence.warc_sink import WarcSink
from verifier.call_log import GENESIS, LogLine, parse_call_log, parse_time
from verifier.manifest_writer import utc_iso
from verifier.stream_format import SEGMENT_STEP

PLAN_NAME = "recording.json"
LOG_NAME = "capture-log.jsonl"
WARC_NAME = "data.warc.gz"
MEDIA_DIR = "media"
#: A part's marker that its package is built and accepted: recovery moves on to the next part.
DONE_NAME = "packaged.json"


@dataclass(frozen=True)
class Plan:
    """What was asked for, and where the recording stands (``recording.json``)."""

    recording_id: str
    url: str
    requested_seconds: float
    #: Wall-clock UTC time the recording stops, whatever restarts happen before it.
    ends_at: str
    matter: str | None
    allow_private: bool
    part: int
    evidence_id: str
    previous: str | None = None
    previous_last_sequence: int | None = None
    #: The previous part was closed at its size limit and this one started at once: no stop between.
    continues_without_stop: bool = False
    #: The watch this recording is a run of (its first part's ``previous`` is the watch's last run).
    watch: str | None = None
    finished: bool = False

    @property
    def deadline(self) -> datetime:
        return parse_time(self.ends_at)

    def next_part(self, evidence_id: str, previous: str, last_sequence: int | None, *, without_stop: bool) -> Plan:
        return replace(self, part=self.part + 1, evidence_id=evidence_id, previous=previous,
                       previous_last_sequence=last_sequence if last_sequence is not None
                       else self.previous_last_sequence, continues_without_stop=without_stop)


def new_recording_id(now: datetime) -> str:
    return f"stream-{now.strftime('%Y%m%dT%H%M%SZ')}-{uuid.uuid4().hex[:8]}"


def plan_recording(streams_dir: Path, *, url: str, seconds: float, starts: datetime, matter: str | None,
                   allow_private: bool, evidence_id: str, previous: str | None = None,
                   watch: str | None = None) -> Path:
    """Create the recording's folder and plan; return the folder."""
    recording_id = new_recording_id(starts)
    folder = streams_dir / recording_id
    folder.mkdir(parents=True)
    save_plan(folder, Plan(recording_id=recording_id, url=url, requested_seconds=seconds,
                           ends_at=utc_iso(starts + timedelta(seconds=seconds)), matter=matter,
                           allow_private=allow_private, part=1, evidence_id=evidence_id, previous=previous,
                           watch=watch))
    return folder


def save_plan(folder: Path, plan: Plan) -> None:
    """Write ``recording.json`` atomically (a kill leaves the old plan or the new one, never half)."""
    temporary = folder / f".{PLAN_NAME}.tmp"
    with temporary.open("w") as out:
        json.dump(asdict(plan), out, indent=1)
        out.flush()
        os.fsync(out.fileno())
    temporary.replace(folder / PLAN_NAME)


def load_plan(folder: Path) -> Plan:
    return Plan(**json.loads((folder / PLAN_NAME).read_text()))


def part_dir(folder: Path, plan: Plan) -> Path:
    return folder / f"part-{plan.part}"


def unfinished(streams_dir: Path) -> list[Path]:
    """Recordings whose plan is not finished: a process stopped while they ran."""
    if not streams_dir.is_dir():
        return []
    return sorted(f for f in streams_dir.iterdir() if (f / PLAN_NAME).is_file() and not load_plan(f).finished)


class StreamLog(CallLog):
    """The part's call log, which a restart can reopen to append to after cutting a torn last line."""

    @property
    def lines(self) -> int:
        return self._seq

    @classmethod
    def reopen(cls, path: Path) -> tuple[StreamLog, tuple[LogLine, ...]]:
        data = path.read_bytes() if path.exists() else b""
        whole = data[:data.rfind(b"\n") + 1]
        lines = parse_call_log(whole) if whole else ()
        with path.open("ab") as torn:
            torn.truncate(len(whole))
        log = cls.__new__(cls)
        log.path, log._file, log._seq = path, path.open("ab"), len(lines)
        log.head = lines[-1].sha256 if lines else GENESIS
        log.last_time = lines[-1].time if lines else None
        return log, lines


class StreamWarc(WarcSink):
    """The part's WARC; ``end_offset`` is where the last complete record ends (the log records it)."""

    def end_offset(self) -> int:
        self._file.flush()
        return int(self._file.tell())


@dataclass(frozen=True)
class ReopenedPart:
    log: StreamLog
    lines: tuple[LogLine, ...]
    #: Media files the log names, in log order (init first when there is one).
    media: list[Path]
    last_sequence: int | None


def media_files(part: Path, lines: tuple[LogLine, ...]) -> list[Path]:
    return [part / MEDIA_DIR / str(line.inputs["file"]) for line in lines
            if line.step in (SEGMENT_STEP, "init") and isinstance(line.inputs.get("file"), str)]


def last_sequence(lines: tuple[LogLine, ...]) -> int | None:
    sequences = [line.inputs.get("sequence") for line in lines if line.step == SEGMENT_STEP]
    found = [s for s in sequences if isinstance(s, int)]
    return found[-1] if found else None


def reopen_part(part: Path) -> ReopenedPart:
    """Cut a killed part's torn tail (log and WARC) so it holds exactly what its log names."""
    log, lines = StreamLog.reopen(part / LOG_NAME)
    ends = [line.inputs.get("warc_end") for line in lines]
    warc_end = max((e for e in ends if isinstance(e, int)), default=None)
    warc = part / WARC_NAME
    if warc_end is not None and warc.exists() and warc.stat().st_size > warc_end:
        with warc.open("r+b") as torn:
            torn.truncate(warc_end)
    return ReopenedPart(log=log, lines=lines, media=media_files(part, lines), last_sequence=last_sequence(lines))


def interruption_record(lines: tuple[LogLine, ...], now: datetime) -> dict[str, Any]:
    last = lines[-1].time if lines else None
    return {"detected_at": utc_iso(now), "last_logged_at": utc_iso(last) if last else None,
            "note": "the recording process stopped without closing this part (killed or crashed); it was "
                    "closed when the recorder restarted. This part holds what was logged before the stop; the "
                    "next part continues the recording and logs the span in between as a gap"}
