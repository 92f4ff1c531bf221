"""Derive the viewing copy of a recorded stream: its segments remuxed into one MP4 by ffmpeg.

``-c copy`` moves the coded frames into an MP4 container without decoding or re-encoding them, so
the MP4 shows exactly the pictures and sound that were served. It is still a derived artifact: the
call log records the command, ffmpeg's version and binary hash, and the sha256 of the input and of
the result, so anyone can repeat the derivation from the segments in the WARC.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from verifier.errors import TiezhengError

FFMPEG_TIMEOUT_SECONDS = 600


class RemuxError(TiezhengError):
    """ffmpeg is missing or could not remux the recorded segments."""


@dataclass(frozen=True)
class Remuxed:
    path: Path
    command: list[str]
    input_sha256: str


@cache
def ffmpeg_record() -> dict[str, str]:
    """Name, version, path and sha256 of the ffmpeg binary. Raises RemuxError when none is installed."""
    found = shutil.which("ffmpeg")
    if found is None:
        raise RemuxError("ffmpeg is not installed (Debian package ffmpeg); it remuxes the stream to MP4")
    binary = Path(found).resolve()
    version = subprocess.run([str(binary), "-hide_banner", "-version"], capture_output=True, text=True,
                             timeout=30, check=False).stdout.splitlines()
    digest = hashlib.sha256(binary.read_bytes()).hexdigest()
    first = (version[0] if version else "unknown").removeprefix("ffmpeg version ")
    return {"name": "ffmpeg", "version": first.split(" Copyright")[0],
            "sha256": digest, "executable": str(binary)}


def remux(parts: list[Path], work: Path) -> Remuxed:
    """Concatenate ``parts`` (init segment first, then media segments in order) and remux them into
    ``work/stream.mp4``. Raises RemuxError."""
    joined = work / "segments.bin"
    digest = hashlib.sha256()
    with joined.open("wb") as out:
        for part in parts:
            data = part.read_bytes()
            digest.update(data)
            out.write(data)
    output = work / "stream.mp4"
    # Relative names in the logged command: the derivation is repeatable anywhere, and no path of
    # this machine enters the package.
    command = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-i", joined.name, "-map", "0:v?",
               "-map", "0:a?", "-c", "copy", "-fflags", "+bitexact", "-movflags", "+faststart", output.name]
    binary = ffmpeg_record()["executable"]
    try:
        done = subprocess.run([binary, *command[1:]], cwd=work, capture_output=True, text=True,
                              timeout=FFMPEG_TIMEOUT_SECONDS, check=False)
    except subprocess.TimeoutExpired as exc:
        raise RemuxError(f"ffmpeg did not finish the remux within {FFMPEG_TIMEOUT_SECONDS} s") from exc
    finally:
        joined.unlink(missing_ok=True)
    if done.returncode != 0 or not output.is_file():
        raise RemuxError(f"ffmpeg could not remux the segments: {done.stderr.strip()[-300:] or done.returncode}")
    return Remuxed(path=output, command=command, input_sha256=digest.hexdigest())


def probe_seconds(media: Path) -> float | None:
    """The duration ffprobe reads from a media file, or None when it cannot tell."""
    probe = shutil.which("ffprobe")
    if probe is None:
        return None
    done = subprocess.run([probe, "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(media)],
                          capture_output=True, text=True, timeout=60, check=False)
    try:
        return float(done.stdout.strip())
    except ValueError:
        return None


def derivation(remuxed: Remuxed) -> dict[str, Any]:
    """The ``remux`` log step's inputs: what was run on what."""
    tool = ffmpeg_record()
    return {"command": remuxed.command, "tool": {k: tool[k] for k in ("name", "version", "sha256")},
            "input": "the init segment and every logged media segment, in log order, concatenated",
            "input_sha256": remuxed.input_sha256, "re_encoded": False}
