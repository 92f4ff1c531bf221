"""A real S3 API server for tests: s3rver from npm on a free loopback port, with one empty bucket.

Used by the blob store's S3 tests and by the scale test, whose processes share nothing but it,
PostgreSQL and Redis.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
S3RVER = REPO / "node_modules" / ".bin" / "s3rver"
BUCKET = "tiezheng-test"
#: s3rver accepts any well-formed signature made with these.
S3_ENV = {"AWS_ACCESS_KEY_ID": "S3RVER", "AWS_SECRET_ACCESS_KEY": "S3RVER", "AWS_DEFAULT_REGION": "us-east-1"}
START_TIMEOUT = 20.0


def s3rver_missing() -> str | None:
    """Why s3rver cannot run here, or None."""
    if shutil.which("node") is None:
        return "needs Node.js (`node`) to run s3rver"
    if not S3RVER.exists():
        return f"needs s3rver from npm at {S3RVER.relative_to(REPO)} (run `npm ci`)"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running_s3rver(root: Path) -> Iterator[str]:
    """Serve an S3 API with the empty bucket ``BUCKET``, objects kept under ``root``; yields its URL."""
    port = _free_port()
    root.mkdir(parents=True, exist_ok=True)
    log = (root.parent / f"{root.name}.log").open("wb")
    process = subprocess.Popen([str(S3RVER), "--directory", str(root), "--port", str(port), "--address",
                                "127.0.0.1", "--silent", "--configure-bucket", BUCKET],
                               stdout=log, stderr=subprocess.STDOUT)
    log.close()
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"s3rver exited with {process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"s3rver not listening after {START_TIMEOUT} s") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
