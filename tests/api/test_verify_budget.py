"""POST /v1/verify needs no key, so it runs under a budget: size, concurrency and wall time.

Against the real service (`tiezheng serve`): the 37 MB package of three 2 GiB sparse entries is
refused from its central directory in well under a second of work; a full house answers 503 with
Retry-After; a verification past its time cap is cut off and its worker process is really gone.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import start_server
from tests.api.server import Server
from tests.verifier.zip_forge import sparse_bomb

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "packages" / "good-upload.wacz"
#: Generous bound on the whole request, upload of ~40 MB over loopback included.
MAX_SECONDS = 5.0


@pytest.fixture(scope="module")
def budget_server(anvil: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from start_server(tmp_path_factory.mktemp("budget"), "sqlite", TIEZHENG_VERIFY_MAX_BYTES=str(64 << 20),
                            TIEZHENG_VERIFY_CONCURRENCY="1", TIEZHENG_RATE_BURST="200")


def _verify(server: Server, data: bytes) -> httpx.Response:
    return httpx.post(f"{server.url}/v1/verify", files={"file": ("package.wacz", data, "application/zip")},
                      timeout=120)


def test_sparse_bomb_is_refused_quickly(budget_server: Server, tmp_path: Path) -> None:
    bomb = sparse_bomb(tmp_path / "sparse.wacz").read_bytes()
    started = time.monotonic()
    reply = _verify(budget_server, bomb)
    elapsed = time.monotonic() - started
    assert reply.status_code == 200, reply.text
    assert reply.json()["verdict"] == "unusable" and "decompression bomb" in reply.json()["error"]
    assert elapsed < MAX_SECONDS


def test_over_the_size_limit_is_413(budget_server: Server) -> None:
    reply = _verify(budget_server, bytes((64 << 20) + 1))
    assert reply.status_code == 413 and reply.json()["error"]["code"] == "payload_too_large"


def test_a_full_house_answers_busy_then_recovers(budget_server: Server) -> None:
    package = SAMPLE.read_bytes()
    with ThreadPoolExecutor(max_workers=6) as pool:
        replies = list(pool.map(lambda _: _verify(budget_server, package), range(6)))
    codes = sorted(r.status_code for r in replies)
    assert 200 in codes and 503 in codes, codes
    busy = next(r for r in replies if r.status_code == 503)
    assert busy.json()["error"]["code"] == "busy" and int(busy.headers["Retry-After"]) > 0
    after = _verify(budget_server, package)
    assert after.status_code == 200 and after.json()["verdict"]
    assert len(_workers(budget_server)) == 1  # one warm worker, reused: a slot costs no process start


def test_the_certificate_route_runs_under_the_same_budget(budget_server: Server, tmp_path: Path) -> None:
    reply = httpx.post(f"{budget_server.url}/v1/verify/certificate.pdf", timeout=120,
                       files={"file": ("package.wacz", SAMPLE.read_bytes(), "application/zip")})
    assert reply.status_code == 200 and reply.content.startswith(b"%PDF"), reply.text[:200]
    assert reply.headers["content-type"] == "application/pdf"
    bomb = httpx.post(f"{budget_server.url}/v1/verify/certificate.pdf", timeout=120,
                      files={"file": ("bomb.wacz", sparse_bomb(tmp_path / "sparse.wacz").read_bytes())})
    assert bomb.status_code == 200 and bomb.content.startswith(b"%PDF")


def _workers(server: Server) -> list[int]:
    """Live verification worker processes the server has started (children running spawn_main)."""
    assert server.process is not None
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line)
            cmdline = (status.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if fields.get("PPid", "").strip() == str(server.process.pid) and b"spawn_main" in cmdline:
            found.append(int(status.parent.name))
    return found


def test_a_verification_past_its_time_cap_is_stopped(anvil: Path, tmp_path: Path) -> None:
    for server in start_server(tmp_path, "sqlite", TIEZHENG_VERIFY_TIMEOUT_SECONDS="0.05"):
        package = SAMPLE.read_bytes()
        started = time.monotonic()
        reply = _verify(server, package)
        assert reply.status_code == 503 and reply.json()["error"]["code"] == "verification_timeout", reply.text
        assert time.monotonic() - started < MAX_SECONDS
        assert _workers(server) == []
        # The service itself is unharmed, and the next request gets a fresh worker under the same cap.
        assert httpx.get(f"{server.url}/healthz", timeout=10).status_code == 200
        assert _verify(server, package).json()["error"]["code"] == "verification_timeout"
