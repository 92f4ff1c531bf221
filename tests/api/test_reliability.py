"""Nothing accepted is lost or run twice: crash tests with real processes, and idempotent retries.

(a) The API SIGKILLs itself between committing a capture and publishing it (``TIEZHENG_FAILPOINT=
api:accepted``); after a restart the outbox relay publishes it and it is captured and sealed once.
(b) A capture worker (Dramatiq on Redis, PostgreSQL) SIGKILLs itself mid-capture, its package built
but not recorded; the sweeper queues the capture again once the lease lapses and another worker
captures it, once. (c) A retry with the same ``Idempotency-Key`` answers the same ids.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from api.service.settings import load_settings
from tests.api.conftest import capture_available, start_server
from tests.api.server import BIN, Server, wait_for_status

#: Our own Redis database: tests/scale uses 7 and flushes it.
REDIS_URL = "redis://127.0.0.1:6379/11"
#: Short leases and sweeps, so a dead worker's capture is queued again within seconds.
FAST_RECOVERY = {"TIEZHENG_CAPTURE_LEASE_SECONDS": "3", "TIEZHENG_SWEEP_SECONDS": "1"}


def _needs_capture() -> None:
    if (reason := capture_available()) is not None:
        pytest.skip(f"web capture: {reason}")


def _engine(server: Server) -> Engine:
    return create_engine(server.database_url or load_settings(server.data_dir).database)


def _count(engine: Engine, sql: str, **params: Any) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text(sql), params).scalar_one())


def _wait(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.3)


def _captured_once(engine: Engine, row_id: str) -> str:
    """One package recorded and sealed for the capture, one 'captured' audit event; its evidence id."""
    with engine.connect() as connection:
        (evidence_id,) = connection.execute(text("select evidence_id from evidence where id = :id"),
                                            {"id": row_id}).one()
    assert evidence_id
    assert _count(engine, "select count(*) from seal_item where evidence_id = :e", e=evidence_id) == 1
    assert _count(engine, "select count(*) from audit_event where action = 'evidence.captured' and target = :id",
                  id=row_id) == 1
    assert _count(engine, "select count(*) from outbox where target = :id and sent_at is null", id=row_id) == 0
    return str(evidence_id)


# -- (c) idempotent retries --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def keys(server: Server) -> tuple[str, str]:
    return server.new_tenant()["api_key"], server.new_tenant()["api_key"]


def test_idempotent_capture_retry(server: Server, keys: tuple[str, str]) -> None:
    key = secrets.token_hex(16)
    body = {"urls": ["http://127.0.0.1:9/a", "http://127.0.0.1:9/b"], "note": "retry me"}
    with server.client(keys[0]) as client, server.client(keys[1]) as other:
        first = client.post("/v1/captures", json=body, headers={"Idempotency-Key": key})
        again = client.post("/v1/captures", json=body, headers={"Idempotency-Key": key})
        assert first.status_code == again.status_code == 202, again.text
        assert again.json() == first.json() and len(first.json()["evidence_ids"]) == 2
        assert "idempotent-replayed" not in first.headers and again.headers["idempotent-replayed"] == "true"
        changed = client.post("/v1/captures", json={**body, "note": "another"}, headers={"Idempotency-Key": key})
        assert changed.status_code == 422 and changed.json()["error"]["code"] == "idempotency_key_reused"
        # Keys are per tenant: another tenant's same key is its own request.
        theirs = other.post("/v1/captures", json=body, headers={"Idempotency-Key": key})
        assert theirs.status_code == 202 and set(theirs.json()["evidence_ids"]).isdisjoint(first.json()["evidence_ids"])
        for bad in ("", "with space", "x" * 256, "ключ".encode()):
            reply = client.post("/v1/captures", json=body, headers={"Idempotency-Key": bad})
            assert reply.status_code == 422 and reply.json()["error"]["code"] == "invalid_request", bad
        listed = client.get("/v1/evidence", params={"q": "retry me"}).json()
        assert listed["count"] == 2  # two URLs, accepted once


def test_idempotent_upload_retry_and_race(server: Server, keys: tuple[str, str]) -> None:
    key = secrets.token_hex(16)
    content = secrets.token_bytes(64)

    def upload(data: bytes = content, note: str = "race") -> httpx.Response:
        with server.client(keys[0]) as client:
            return client.post("/v1/uploads", files=[("file", ("a.bin", data, "application/octet-stream"))],
                               data={"note": note}, headers={"Idempotency-Key": key})

    # Four at once with one key: one package, and every answer names it.
    with ThreadPoolExecutor(4) as pool:
        replies = list(pool.map(lambda _: upload(), range(4)))
    assert {r.status_code for r in replies} == {202}, [r.text for r in replies]
    ids = {tuple(r.json()["evidence_ids"]) for r in replies}
    assert len(ids) == 1
    assert upload().json()["evidence_ids"] == list(next(iter(ids)))
    other_bytes = upload(data=content + b"!")
    assert other_bytes.status_code == 422 and other_bytes.json()["error"]["code"] == "idempotency_key_reused"
    with server.client(keys[0]) as client:
        assert client.get("/v1/evidence", params={"q": "race"}).json()["count"] == 1
        malformed = client.post("/v1/uploads", files=[("file", ("a.bin", content, "application/octet-stream"))],
                                headers={"Idempotency-Key": "two words"})
        assert malformed.status_code == 422 and malformed.json()["error"]["code"] == "invalid_request"


# -- (a) the API dies between commit and publish ---------------------------------------------------------

@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_api_killed_between_commit_and_publish(backend: str, tmp_path: Path, anvil: Path, sample_site: str) -> None:
    _needs_capture()
    servers = start_server(tmp_path, backend, TIEZHENG_FAILPOINT="api:accepted", **FAST_RECOVERY)
    server = next(servers)
    try:
        api_key = server.new_tenant()["api_key"]
        body = {"urls": [f"{sample_site}/index.html?crash=api"], "note": "accepted, then the API died"}
        headers = {"Idempotency-Key": "crash-test-1"}
        with server.client(api_key) as client, pytest.raises(httpx.TransportError):
            client.post("/v1/captures", json=body, headers=headers)
        assert server.process is not None
        assert server.process.wait(30) == -signal.SIGKILL
        engine = _engine(server)
        (row_id,) = [r for (r,) in engine.connect().execute(text("select id from evidence")).all()]
        assert _count(engine, "select count(*) from outbox where sent_at is null") == 1  # committed, unpublished

        server.process = None
        server.extra_env.pop("TIEZHENG_FAILPOINT")
        server.start()
        with server.client(api_key) as client:
            # The client's retry (its answer was lost) names the same capture.
            retry = client.post("/v1/captures", json=body, headers=headers)
            assert retry.status_code == 202 and retry.json()["evidence_ids"] == [row_id]
            done = wait_for_status(client, row_id, {"sealed", "failed"}, timeout=120)
        assert done["status"] == "sealed", done["error"]
        _captured_once(engine, row_id)
        assert _count(engine, "select count(*) from evidence") == 1
        engine.dispose()
    finally:
        servers.close()


# -- (b) a capture worker dies mid-capture -----------------------------------------------------------------

def _reachable(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture()
def redis_url() -> str:
    redis = pytest.importorskip("redis")
    if not _reachable(6379):
        pytest.skip("Redis is not reachable at 127.0.0.1:6379")
    redis.Redis.from_url(REDIS_URL).flushdb()
    return REDIS_URL


class Worker:
    """`tiezheng worker capture` in its own process group (the Dramatiq supervisor, its worker, Chromium)."""

    def __init__(self, server: Server, log: Path, **extra: str) -> None:
        with log.open("ab") as out:
            self.process = subprocess.Popen([str(BIN / "tiezheng"), "worker", "capture", "--processes", "1",
                                             "--threads", "1"], env={**server.env, **extra}, stdout=out,
                                            stderr=subprocess.STDOUT, start_new_session=True)

    def stop(self) -> None:
        """SIGTERM the group (even when its leader is gone: a browser may outlive it), SIGKILL if it lingers."""
        self._signal(signal.SIGTERM)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGKILL)
            self.process.wait()

    def _signal(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signum)


@pytest.mark.timeout(300)
def test_capture_worker_killed_mid_capture(tmp_path: Path, anvil: Path, sample_site: str, redis_url: str) -> None:
    _needs_capture()
    servers = start_server(tmp_path, "postgresql", TIEZHENG_REDIS_URL=redis_url, **FAST_RECOVERY)
    server = next(servers)
    workers: list[Worker] = []
    try:
        api_key = server.new_tenant()["api_key"]
        engine = _engine(server)
        # The first worker SIGKILLs itself after building the package, before recording it.
        workers.append(Worker(server, tmp_path / "worker-1.log", TIEZHENG_FAILPOINT="capture:built"))
        with server.client(api_key) as client:
            accepted = client.post("/v1/captures", json={"urls": [f"{sample_site}/index.html?crash=worker"]})
            assert accepted.status_code == 202, accepted.text
            (row_id,) = accepted.json()["evidence_ids"]
            _wait(lambda: workers[0].process.poll() is not None, 120, "the first worker's failpoint")
            assert _count(engine, "select count(*) from evidence where id = :id and lease_owner is not null",
                          id=row_id) == 1  # it died holding the lease, package built and not recorded
            workers.append(Worker(server, tmp_path / "worker-2.log"))
            done = wait_for_status(client, row_id, {"sealed", "failed"}, timeout=150)
        assert done["status"] == "sealed", done["error"]
        _captured_once(engine, row_id)
        with engine.connect() as connection:
            details = [json.loads(d) for (d,) in connection.execute(text(
                "select detail from audit_event where action = 'evidence.requeued' and target = :id"),
                {"id": row_id}).all()]
        assert details and details[0]["reason"] == "lease lapsed"
        engine.dispose()
    finally:
        for worker in workers:
            worker.stop()
        servers.close()
