"""P2's part on the session video (``evidence/session.webm``): it is there when the log says it was
recorded, it is a WebM this verifier can measure, and it lasts at least the span of the logged steps it
claims to cover.

The capture logs ``video-start`` when recording begins and ``video`` when the file is finished; the
``video`` line names the lines it covers (``covers.from_seq`` .. ``covers.to_seq``) and the file's hash
(which the rest of P2 compares with the file). Each line's time is written when its step ends, so the
span from the first covered line to the last is a lower bound of what the video must show. The
duration is read from the file itself (``verifier.webm``), never from the log's claim.
"""

from __future__ import annotations

from verifier.call_log import LogLine
from verifier.capture_format import SESSION_VIDEO_PATH, VIDEO_START_STEP, VIDEO_STEP
from verifier.checks.context import Context
from verifier.court_time import format_duration, plural
from verifier.errors import InvalidPackage
from verifier.webm import MAX_WEBM_BYTES, WebmError, read_webm

#: Frame timing is quantised (a few frames a second) and the last line is written after the step ends.
DURATION_TOLERANCE_SECONDS = 0.5
#: How far the stated Duration may run past the last frame (one frame interval and encoder padding).
LAST_FRAME_SLACK_SECONDS = 1.5


def _covered(lines: tuple[LogLine, ...], line: LogLine) -> tuple[LogLine, LogLine] | str:
    covers = line.inputs.get("covers")
    first = covers.get("from_seq") if isinstance(covers, dict) else None
    last = covers.get("to_seq") if isinstance(covers, dict) else None
    if not (isinstance(first, int) and isinstance(last, int) and not isinstance(first, bool)
            and not isinstance(last, bool) and 0 <= first <= last < line.seq < len(lines)):
        return "the 'video' log line does not name the lines it covers (covers.from_seq .. covers.to_seq)"
    return lines[first], lines[last]


def session_video_outcome(ctx: Context, lines: tuple[LogLine, ...]) -> tuple[list[str], str | None]:
    """(problems, a phrase for P2's reason when the video holds; None when no video was recorded)."""
    finished = [line for line in lines if line.step == VIDEO_STEP]
    started = any(line.step == VIDEO_START_STEP for line in lines)
    if not finished:
        if started:
            return ["the capture log started a session video but never logged it finished"], None
        return [], None
    if len(finished) > 1:
        return [f"the capture log finished {len(finished)} session videos (one expected)"], None
    line = finished[0]
    if SESSION_VIDEO_PATH not in ctx.package.entries:
        return [f"the capture log says a session video was recorded, but {SESSION_VIDEO_PATH} is missing"], None
    span = _covered(lines, line)
    if isinstance(span, str):
        return [span], None
    first, last = span
    try:
        info = read_webm(ctx.package.read(SESSION_VIDEO_PATH, MAX_WEBM_BYTES))
    except (WebmError, InvalidPackage) as exc:
        return [f"{SESSION_VIDEO_PATH} is not a readable WebM video: {exc}"], None
    claimed = (last.time - first.time).total_seconds()
    problems = []
    if info.blocks == 0:
        problems.append(f"{SESSION_VIDEO_PATH} holds no frames")
    elif info.span_seconds + DURATION_TOLERANCE_SECONDS < claimed:
        problems.append(f"the session video lasts {format_duration(round(info.span_seconds, 3))}, less than the "
                        f"{format_duration(round(claimed, 3))} of the steps it claims to cover "
                        f"('{first.step}' to '{last.step}')")
    elif info.last_block_seconds + LAST_FRAME_SLACK_SECONDS < info.span_seconds:
        problems.append(f"the session video states {format_duration(round(info.span_seconds, 3))}, but its last "
                        f"frame is at {format_duration(round(info.last_block_seconds, 3))}")
    if problems:
        return problems, None
    steps = last.seq - first.seq + 1
    return [], (f"the session video ({info.doc_type}, {format_duration(round(info.span_seconds, 3))}, "
                f"{plural(info.blocks, 'frame')}) covers {plural(steps, 'logged step')} from '{first.step}' to "
                f"'{last.step}' ({format_duration(round(claimed, 3))})")
