"""The session video: the browser viewport from before navigation to the end of the capture, as WebM.

Playwright's own ``record_video_dir`` needs Playwright's private ffmpeg build, which only
``playwright install`` downloads (from outside the package registries, so not on these machines). The
same technique is used here with the distribution's ffmpeg: Chromium's DevTools screencast
(``Page.startScreencast``) sends a JPEG frame whenever the viewport repaints, and each frame is placed on a
constant-rate timeline by the time it arrived: the previous frame is repeated until the next one comes, and
the last one until the recording stops. So the video's duration is the wall-clock span it recorded, and a
still page costs almost nothing (repeated frames encode to a few bytes each).

Cost, chosen for 2-core machines: ``VIDEO_FPS`` frames a second, at most ``MAX_VIDEO_SIZE`` pixels (the
viewport, scaled down to fit: 960 × 600 still shows 16 px text legibly, and costs half the encoder CPU of
1280 × 800, ~7 ms a frame), VP8 in realtime mode on one thread (``ENCODER_ARGS``).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import io
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from playwright.async_api import CDPSession, Page
from playwright.async_api import Error as PlaywrightError

from evidence.call_log import CallLog, output_record
from evidence.capture_errors import CaptureError
from verifier.capture_format import SESSION_VIDEO_PATH, VIDEO_START_STEP, VIDEO_STEP

FFMPEG_ENV = "TIEZHENG_FFMPEG"
VIDEO_FPS = 5
MAX_VIDEO_SIZE = (960, 600)
JPEG_QUALITY = 70
#: A capture is bounded by its step timeouts; this bounds the video whatever happens.
MAX_VIDEO_SECONDS = 900.0
MAX_FRAME_BYTES = 8 << 20
#: Frames waiting for ffmpeg beyond this mean the encoder fell behind: the recording fails rather than
#: holding ever more frames in memory (or dropping some, which would shorten the video's timeline).
MAX_PENDING_BYTES = 256 << 20
STOP_TIMEOUT_SECONDS = 60.0
ENCODER_ARGS = ("-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-threads", "1",
                "-b:v", "1M", "-crf", "12", "-qmin", "0", "-qmax", "50", "-pix_fmt", "yuv420p")


class VideoError(CaptureError):
    """The session video could not be recorded (no ffmpeg, encoder failure)."""


@lru_cache(maxsize=4)
def _ffmpeg_facts(path: str) -> tuple[str, str]:
    """(version line, sha256 of the binary) of the ffmpeg at ``path``."""
    try:
        version = subprocess.run([path, "-hide_banner", "-version"], capture_output=True, timeout=20,
                                 check=False).stdout.decode("utf-8", "replace").splitlines()
    except (OSError, subprocess.SubprocessError) as exc:
        raise VideoError(f"ffmpeg at {path} does not run: {exc}") from exc
    digest = hashlib.sha256()
    with open(path, "rb") as binary:
        for chunk in iter(lambda: binary.read(1 << 20), b""):
            digest.update(chunk)
    return (version[0] if version else "unknown"), digest.hexdigest()


def find_ffmpeg() -> Path:
    """``TIEZHENG_FFMPEG``, else ffmpeg on PATH. Raises VideoError naming ``--no-video``."""
    configured = os.environ.get(FFMPEG_ENV)
    found = configured or shutil.which("ffmpeg")
    if not found or not Path(found).is_file():
        where = f"{FFMPEG_ENV}={configured} is not a file" if configured else "ffmpeg is not installed"
        raise VideoError(f"the session video needs ffmpeg ({where}); install it, or capture with no_video")
    return Path(found)


def video_size(viewport: tuple[int, int]) -> tuple[int, int]:
    """The viewport scaled down to fit MAX_VIDEO_SIZE, both sides even (VP8 in yuv420p needs that)."""
    scale = min(1.0, MAX_VIDEO_SIZE[0] / viewport[0], MAX_VIDEO_SIZE[1] / viewport[1])
    return tuple(max(2, int(side * scale) // 2 * 2) for side in viewport)  # type: ignore[return-value]


@lru_cache(maxsize=8)
def _blank_frame(size: tuple[int, int]) -> bytes:
    """A white JPEG: what the viewport shows before the first paint arrives."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", size, "white").save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


def encoder_tool_record() -> dict[str, str]:
    """The manifest's ``capture.tools`` entry for the ffmpeg that encodes the session video."""
    path = find_ffmpeg()
    version, sha256 = _ffmpeg_facts(str(path))
    return {"name": "ffmpeg", "version": version, "sha256": sha256, "executable": str(path)}


@dataclass(frozen=True)
class VideoResult:
    path: Path
    duration_seconds: float
    frames_written: int
    frames_received: int

    def outcome(self) -> dict[str, Any]:
        return {"duration_seconds": round(self.duration_seconds, 3), "frames_written": self.frames_written,
                "frames_received": self.frames_received}


class SessionVideo:
    """Records one page's viewport into ``path`` between ``start()`` and ``end()``; ``finish()`` waits for the file."""

    def __init__(self, page: Page, path: Path, *, viewport: tuple[int, int]) -> None:
        self.page, self.path = page, path
        self.size = video_size(viewport)
        self.ffmpeg = find_ffmpeg()
        self._cdp: CDPSession | None = None
        self._process: asyncio.subprocess.Process | None = None
        self._last = _blank_frame(self.size)
        self._began = 0.0
        self._written = 0
        self._received = 0
        self._acks: set[asyncio.Task[Any]] = set()
        self._behind = False

    def record(self) -> dict[str, Any]:
        """How the video is made, for the call log: source, rate, size, encoder and its binary hash."""
        version, sha256 = _ffmpeg_facts(str(self.ffmpeg))
        return {"source": "Chromium DevTools screencast (Page.startScreencast), JPEG frames placed by arrival time",
                "fps": VIDEO_FPS, "size": list(self.size), "jpeg_quality": JPEG_QUALITY,
                "encoder": {"name": "ffmpeg", "version": version, "sha256": sha256, "codec": "vp8 (libvpx)",
                            "args": list(ENCODER_ARGS)}}

    async def start(self) -> None:
        """Start ffmpeg and the screencast. Raises VideoError."""
        width, height = self.size
        scale = (f"scale={width}:{height}:force_original_aspect_ratio=decrease,"
                 f"pad={width}:{height}:(ow-iw)/2:(oh-ih)/2:white")
        try:
            self._process = await asyncio.create_subprocess_exec(
                str(self.ffmpeg), "-hide_banner", "-loglevel", "error", "-y",
                # No probing: encode each frame as it comes instead of buffering input first (as Playwright does).
                "-f", "image2pipe", "-avioflags", "direct", "-fpsprobesize", "0", "-probesize", "32",
                "-analyzeduration", "0", "-c:v", "mjpeg", "-framerate", str(VIDEO_FPS), "-i", "pipe:0",
                "-an", "-vf", scale, *ENCODER_ARGS, "-f", "webm", str(self.path),
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        except OSError as exc:
            raise VideoError(f"ffmpeg did not start: {exc}") from exc
        self._began = time.monotonic()
        try:
            self._cdp = await self.page.context.new_cdp_session(self.page)
            self._cdp.on("Page.screencastFrame", self._frame)
            await self._cdp.send("Page.startScreencast", {"format": "jpeg", "quality": JPEG_QUALITY,
                                                          "maxWidth": width, "maxHeight": height})
        except PlaywrightError as exc:
            await self._abort()
            raise VideoError(f"the browser did not start its screencast: {exc.message.splitlines()[0]}") from exc

    def _due(self) -> int:
        elapsed = min(time.monotonic() - self._began, MAX_VIDEO_SECONDS)
        return int(elapsed * VIDEO_FPS)

    def _fill(self, until: int) -> None:
        """Repeat the last frame up to frame number ``until`` (exclusive)."""
        assert self._process is not None and self._process.stdin is not None
        stdin = self._process.stdin
        while self._written < until and not self._behind:
            if stdin.transport.get_write_buffer_size() > MAX_PENDING_BYTES:
                self._behind = True
                return
            stdin.write(self._last)
            self._written += 1

    def _frame(self, params: dict[str, Any]) -> None:
        if self._cdp is not None:  # unacknowledged, Chromium stops sending frames
            ack = asyncio.ensure_future(self._cdp.send("Page.screencastFrameAck",
                                                       {"sessionId": params.get("sessionId")}))
            self._acks.add(ack)
            ack.add_done_callback(self._acks.discard)
        if self._process is None or self._process.stdin is None or self._process.stdin.is_closing():
            return
        try:
            data = base64.b64decode(params.get("data", ""), validate=True)
        except (binascii.Error, ValueError):
            return
        if not data.startswith(b"\xff\xd8") or len(data) > MAX_FRAME_BYTES:
            return
        self._received += 1
        self._fill(self._due())
        self._last = data

    async def end(self) -> None:
        """Stop the screencast and hand ffmpeg the last frame up to now; ffmpeg then finishes the file on its
        own while the capture goes on (``finish`` waits for it). Raises VideoError."""
        if self._cdp is not None:
            try:
                await self._cdp.send("Page.stopScreencast")
                await self._cdp.detach()
            except PlaywrightError:
                pass  # the page is closing; the frames so far are the video
            self._cdp = None
        for ack in list(self._acks):
            ack.cancel()
        assert self._process is not None and self._process.stdin is not None
        self._fill(max(self._due(), 1) + 1)  # the last frame shown until now, then one past it
        if self._behind:
            await self._abort()
            raise VideoError(f"ffmpeg fell behind the session video (over {MAX_PENDING_BYTES >> 20} MiB of "
                             "frames waiting)")
        self._process.stdin.close()  # what is buffered is still written, then ffmpeg sees the end

    async def finish(self) -> VideoResult:
        """Wait until ffmpeg has written the file (after ``end``). Raises VideoError."""
        process = self._process
        assert process is not None
        try:
            _, stderr = await asyncio.wait_for(process.communicate(), STOP_TIMEOUT_SECONDS)
        except (TimeoutError, BrokenPipeError, ConnectionResetError) as exc:
            await self._abort()
            raise VideoError(f"ffmpeg did not finish the session video: {type(exc).__name__}") from exc
        if process.returncode != 0:
            detail = stderr.decode("utf-8", "replace").strip().splitlines()
            raise VideoError(f"ffmpeg failed on the session video (exit {process.returncode})"
                             + (f": {detail[-1][:200]}" if detail else ""))
        return VideoResult(path=self.path, duration_seconds=self._written / VIDEO_FPS,
                           frames_written=self._written, frames_received=self._received)

    async def _abort(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.returncode is None:
            process.kill()
            await process.wait()

    async def close(self) -> None:
        """Kill ffmpeg if it is still running (a failed capture)."""
        await self._abort()


class LoggedVideo:
    """The session video of one capture, with its two call-log lines (``video-start`` and ``video``)."""

    def __init__(self, video: SessionVideo, log: CallLog) -> None:
        self.video, self.log = video, log
        self.start_seq = self.to_seq = -1

    @classmethod
    async def begin(cls, page: Page, work: Path, *, viewport: tuple[int, int], log: CallLog) -> LoggedVideo:
        """Start recording and log ``video-start``. Raises VideoError."""
        logged = cls(SessionVideo(page, work / SESSION_VIDEO_PATH.replace("/", "__"), viewport=viewport), log)
        await logged.video.start()
        logged.start_seq = log.next_seq
        log.record(VIDEO_START_STEP, inputs={"path": SESSION_VIDEO_PATH, **logged.video.record()})
        return logged

    async def end(self) -> None:
        """Stop recording after the last step it covers (the line logged last). Raises VideoError."""
        self.to_seq = self.log.next_seq - 1
        await self.video.end()

    async def finish(self, files: dict[str, Path]) -> None:
        """Wait for the file, log ``video`` with its hash and the span of lines it covers, and add the file."""
        result = await self.video.finish()
        self.log.record(VIDEO_STEP, inputs={"path": SESSION_VIDEO_PATH,
                                            "covers": {"from_seq": self.start_seq, "to_seq": self.to_seq}},
                        outcome=result.outcome(), outputs=[output_record(SESSION_VIDEO_PATH, result.path)])
        files[SESSION_VIDEO_PATH] = result.path

    async def close(self) -> None:
        await self.video.close()
