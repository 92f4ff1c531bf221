"""verifier/webm.py measures WebM files made by a real encoder (Debian's ffmpeg), seekable and streamed,
and refuses malformed ones with a reason."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from verifier.webm import WebmError, read_webm

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed (make setup)")


def _encode(seconds: float, target: str, tmp_path: Path) -> bytes:
    """A test pattern at 5 fps, 320x200, VP8; ``target`` "file" (sizes and Duration written back) or "pipe"
    (streamed: unknown sizes, no Duration)."""
    args = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
            f"testsrc=size=320x200:rate=5:duration={seconds}", "-c:v", "libvpx", "-deadline", "realtime", "-f", "webm"]
    if target == "pipe":
        return subprocess.run([*args, "pipe:1"], capture_output=True, check=True, timeout=60).stdout
    out = tmp_path / "clip.webm"
    subprocess.run([*args, str(out)], check=True, timeout=60)
    return out.read_bytes()


def test_duration_frames_and_size_of_a_seekable_file(tmp_path: Path) -> None:
    info = read_webm(_encode(3, "file", tmp_path))
    assert info.doc_type == "webm" and (info.width, info.height) == (320, 200)
    assert info.blocks == 15
    assert info.duration_seconds == pytest.approx(3.0, abs=0.01)
    assert info.last_block_seconds == pytest.approx(2.8, abs=0.01)


def test_a_streamed_file_has_no_duration_and_is_measured_by_its_frames(tmp_path: Path) -> None:
    info = read_webm(_encode(2, "pipe", tmp_path))
    assert info.duration_seconds is None and info.blocks == 10
    assert info.span_seconds == info.last_block_seconds == pytest.approx(1.8, abs=0.01)


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda d: b"RIFF" + d[4:], "does not start with an EBML header"),
    (lambda d: d[:len(d) // 2], "runs past the end of the file"),
    (lambda d: d[:4], "truncated at byte 4"),
    (lambda d: d.replace(b"webm", b"avi\x00", 1), "the DocType is 'avi', not webm"),
    (lambda d: d[:4] + b"\x00" + d[5:], "invalid variable-length integer at byte 4"),
])
def test_malformed_files_are_refused_with_the_reason(mutate, message: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(WebmError, match=message):
        read_webm(mutate(_encode(1, "file", tmp_path)))
