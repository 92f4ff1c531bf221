"""The tools a stream recording names in ``capture.tools``: each with a version and a sha256."""

from __future__ import annotations

import hashlib
import platform
import sys
from functools import cache
from importlib import metadata
from pathlib import Path

from evidence.environment import code_record
from evidence.stream.remux import RemuxError, ffmpeg_record
from verifier import __version__ as tiezheng_version

LIBRARIES = ("httpx", "httpcore", "h11", "dnspython", "warcio", "cdxj-indexer", "cryptography", "rfc8785")


@cache
def _library(name: str) -> dict[str, str]:
    try:
        dist = metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return {"name": name, "version": "not installed", "sha256": hashlib.sha256(b"").hexdigest()}
    record = dist.read_text("RECORD") or ""
    return {"name": name, "version": dist.version, "sha256": hashlib.sha256(record.encode()).hexdigest(),
            "sha256_of": "the distribution's RECORD file (it lists the sha256 of every installed file)"}


@cache
def _python() -> dict[str, str]:
    executable = Path(sys.executable).resolve()
    return {"name": "python", "version": platform.python_version(),
            "sha256": hashlib.sha256(executable.read_bytes()).hexdigest()}


def stream_tools() -> list[dict[str, str]]:
    code = code_record()
    tools = [{"name": "tiezheng-stream-recorder", "version": tiezheng_version, "sha256": code["sha256"],
              "sha256_of": code["sha256_of"]}]
    try:
        ffmpeg = ffmpeg_record()
        tools.append({k: ffmpeg[k] for k in ("name", "version", "sha256")})
    except RemuxError:
        pass  # no remux was possible; the log's remux step says so
    return [*tools, _python(), *(_library(name) for name in LIBRARIES)]
