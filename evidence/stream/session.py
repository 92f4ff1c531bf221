"""Run a recording from its plan to its last part, picking up a part that a killed process left.

``record_stream`` plans a new recording and runs it; ``resume_recording`` runs one whose process
stopped. Either way each part, once packaged, goes to ``on_part`` (the service accepts it for
sealing) before the next begins, so a part that exists is never lost to a later crash. A part
killed mid-stream is packaged as it stands (``interrupted`` is logged first) and, while the planned
end is still ahead, the recording goes on as the next part, whose manifest names the previous
part's fingerprint (``previous``) and whose log opens with the gap between the two.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from evidence.capture_errors import CaptureError
from evidence.manifest import new_evidence_id
from evidence.operator_key import OperatorKey
from evidence.stream.package import build_stream_package
from evidence.stream.recorder import ENDED_BY_DURATION, ENDED_BY_SIZE, PartRecorder, Progress
from evidence.stream.recording import (
    DONE_NAME,
    LOG_NAME,
    WARC_NAME,
    Plan,
    StreamLog,
    StreamWarc,
    interruption_record,
    last_sequence,
    load_plan,
    part_dir,
    plan_recording,
    reopen_part,
    save_plan,
)
from evidence.upload import BuiltPackage
from verifier.call_log import LogLine, parse_call_log
from verifier.errors import InvalidPackage
from verifier.package import Requester, open_package
from verifier.stream_format import INTERRUPTED_STEP, PACKAGE_STEP, REMUX_STEP, SEGMENT_STEP

ENDED_INTERRUPTED = "the recording process was interrupted"


@dataclass(frozen=True)
class Sink:
    """Where a recording's packages go and who makes them."""

    packages_dir: Path
    operator: OperatorKey
    requester: Requester
    on_part: Callable[[BuiltPackage, Plan], None]
    on_progress: Callable[[Progress], None] = lambda _: None


def record_stream(streams_dir: Path, sink: Sink, *, url: str, seconds: float, matter: str | None = None,
                  allow_private: bool = False, previous: str | None = None,
                  watch: str | None = None) -> list[BuiltPackage]:
    """Record ``url`` for ``seconds`` from now; a watch's run names the watch and its last run
    (``previous``, hex). Raises CaptureError when the stream cannot be read at all."""
    now = datetime.now(UTC)
    folder = plan_recording(streams_dir, url=url, seconds=seconds, starts=now, matter=matter,
                            allow_private=allow_private, evidence_id=new_evidence_id(now), previous=previous,
                            watch=watch)
    return resume_recording(folder, sink)


def _finish(folder: Path, plan: Plan, part: Path, log: StreamLog, ended: str, sink: Sink) -> BuiltPackage:
    built = build_stream_package(part, plan, log, ended_because=ended, operator=sink.operator,
                                 requester=sink.requester, packages_dir=sink.packages_dir)
    sink.on_part(built, plan)
    _mark_done(part, built, final=ended not in (ENDED_BY_DURATION, ENDED_INTERRUPTED, ENDED_BY_SIZE),
               ended="size" if ended == ENDED_BY_SIZE else "part")
    return built


def _packaged(packages_dir: Path, plan: Plan, lines: tuple[LogLine, ...]) -> BuiltPackage | None:
    """The part's package when it was written whole: its manifest's log_head is the log's last line."""
    path = packages_dir / f"{plan.evidence_id}.wacz"
    if not lines or lines[-1].step != PACKAGE_STEP or not path.is_file():
        return None
    try:
        package = open_package(path)
    except InvalidPackage:
        return None
    if package.manifest.capture.get("log_head") != lines[-1].sha256:
        return None
    return BuiltPackage(evidence_id=plan.evidence_id, fingerprint=package.fingerprint, path=path)


def _mark_done(part: Path, built: BuiltPackage, *, final: bool, ended: str = "part") -> None:
    """Record that the part is packaged and accepted; ``final`` when the stream itself ended."""
    lines = parse_call_log((part / LOG_NAME).read_bytes())
    # The last moment the part was still recording: before the lines that close it.
    recording = [line for line in lines if line.step not in (INTERRUPTED_STEP, REMUX_STEP, PACKAGE_STEP)]
    (part / DONE_NAME).write_text(json.dumps({"fingerprint": built.fingerprint.hex(),
                                              "last_sequence": last_sequence(lines),
                                              "last_logged_at": (recording or lines)[-1].time.isoformat(),
                                              "ended": "final" if final else ended}))


def _advance(folder: Path, plan: Plan, part: Path) -> Plan | None:
    """The plan of the next part after a packaged one, or None when the recording is over."""
    done = json.loads((part / DONE_NAME).read_text())
    shutil.rmtree(part / "media", ignore_errors=True)  # the segments are in the package's WARC now
    if datetime.now(UTC) >= plan.deadline or done.get("ended") == "final":
        save_plan(folder, Plan(**{**plan.__dict__, "finished": True}))
        return None
    following = plan.next_part(new_evidence_id(), done["fingerprint"], done["last_sequence"],
                               without_stop=done.get("ended") == "size")
    save_plan(folder, following)
    return following


def resume_recording(folder: Path, sink: Sink) -> list[BuiltPackage]:
    """Run the recording in ``folder`` to its end; return the packages made by this call."""
    built: list[BuiltPackage] = []
    plan: Plan | None = load_plan(folder)
    previous_logged_at: datetime | None = None
    while plan is not None and not plan.finished:
        part = part_dir(folder, plan)
        if not (part / DONE_NAME).exists():
            if (part / LOG_NAME).exists():
                reopened = reopen_part(part)
                existing = _packaged(sink.packages_dir, plan, reopened.lines)
                if existing is not None:  # killed after the package was written, before it was marked done
                    reopened.log.close()
                    sink.on_part(existing, plan)
                    ended = open_package(existing.path).manifest.capture.get("stream", {}).get("ended_because")
                    _mark_done(part, existing, final=ended not in (ENDED_BY_DURATION, ENDED_INTERRUPTED, ENDED_BY_SIZE),
                               ended="size" if ended == ENDED_BY_SIZE else "part")
                    built.append(existing)
                elif any(line.step != "start" for line in reopened.lines):
                    reopened.log.record(INTERRUPTED_STEP, inputs=interruption_record(reopened.lines, datetime.now(UTC)))
                    built.append(_finish(folder, plan, part, reopened.log, ENDED_INTERRUPTED, sink))
                else:
                    reopened.log.close()
                    shutil.rmtree(part)  # killed before anything was recorded: start this part afresh
                    continue
            else:
                built.append(asyncio.run(_record_part(part, plan, sink, previous_logged_at)))
        done = json.loads((part / DONE_NAME).read_text())
        previous_logged_at = datetime.fromisoformat(done["last_logged_at"])
        plan = _advance(folder, plan, part)
    return built


async def _record_part(part: Path, plan: Plan, sink: Sink,
                       previous_logged_at: datetime | None) -> BuiltPackage:
    part.mkdir(parents=True, exist_ok=True)
    log = StreamLog(part / LOG_NAME)
    warc = StreamWarc(part / WARC_NAME, f"Tiezheng stream recording {plan.evidence_id}, part {plan.part}")
    recorder = PartRecorder(part, plan, log, warc, previous_logged_at=previous_logged_at,
                            on_progress=sink.on_progress)
    try:
        result = await recorder.run()
    except CaptureError:
        warc.close()
        log.close()
        if not any(line.step == SEGMENT_STEP for line in parse_call_log(log.path.read_bytes())):
            # Nothing was recorded: a first part leaves no recording behind; a later part is tried
            # afresh by the next --resume (the parts before it are packaged and accepted already).
            shutil.rmtree(part.parent if plan.part == 1 else part)
        raise
    warc.close()
    folder = part.parent
    return _finish(folder, plan, part, log, result.ended_because, sink)
