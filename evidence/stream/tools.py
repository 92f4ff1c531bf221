"""The tools a stream recording names in ``capture.tools``: each with a version and a sha256."""

from __future__ import annotations

from evidence.environment import code_record, library_record, python_record
from evidence.stream.remux import RemuxError, ffmpeg_record
from verifier import __version__ as tiezheng_version

LIBRARIES = ("httpx", "httpcore", "h11", "dnspython", "warcio", "cdxj-indexer", "cryptography", "rfc8785")


def stream_tools() -> list[dict[str, str]]:
    code = code_record()
    tools = [{"name": "tiezheng-stream-recorder", "version": tiezheng_version, "sha256": code["sha256"],
              "sha256_of": code["sha256_of"]}]
    try:
        ffmpeg = ffmpeg_record()
        tools.append({k: ffmpeg[k] for k in ("name", "version", "sha256")})
    except RemuxError:
        pass  # no remux was possible; the log's remux step says so
    # The interpreter's path stays out: a stream manifest names no host path.
    python = {k: v for k, v in python_record().items() if k != "executable"}
    return [*tools, python, *(library_record(name) for name in LIBRARIES)]
