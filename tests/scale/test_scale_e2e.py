"""Scale-out end to end on PostgreSQL and Redis, every component its own process.

The API (`tiezheng serve --no-seal`), two capture workers (`tiezheng worker capture`) and one sealer
(`tiezheng worker seal`) share a PostgreSQL database, a Redis queue and a data dir. 500 captures of
local pages go in through the API. One capture worker is SIGKILLed mid-run (with its browser); the
sealer kills itself right after a batch is time-stamped and before it is anchored (a failpoint),
and is restarted. Every accepted item must end sealed exactly once, with one anchor transaction per
batch, and every package must verify.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CAPTURES = int(os.environ.get("TIEZHENG_SCALE_CAPTURES", "500"))
REDIS_URL = "redis://127.0.0.1:6379/7"
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
BIN = Path(sys.executable).parent
SITE = Path(__file__).resolve().parents[2] / "samples" / "site"
DEADLINE_SECONDS = 40 * 60

pytestmark = pytest.mark.slow


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture()
def database() -> Iterator[str]:
    psycopg = pytest.importorskip("psycopg")
    if not _reachable("127.0.0.1", 5432):
        pytest.skip("PostgreSQL is not reachable at 127.0.0.1:5432")
    name = f"tz_scale_{secrets.token_hex(4)}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture()
def redis_url() -> str:
    redis = pytest.importorskip("redis")
    if not _reachable("127.0.0.1", 6379):
        pytest.skip("Redis is not reachable at 127.0.0.1:6379")
    redis.Redis.from_url(REDIS_URL).flushdb()
    return REDIS_URL


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Processes:
    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env, self.logs, self.running = env, logs, {}  # type: ignore[var-annotated]

    def start(self, name: str, *args: str, extra: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        log = (self.logs / f"{name}.log").open("ab")
        process = subprocess.Popen([str(BIN / "tiezheng"), *args], env={**self.env, **(extra or {})},
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.running[name] = process
        return process

    def kill(self, name: str) -> None:
        # The whole group: a capture worker is a dramatiq supervisor, its worker and their Chromium.
        os.killpg(self.running[name].pid, signal.SIGKILL)
        self.running[name].wait(30)

    def stop_all(self) -> None:
        for process in self.running.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.running.values():
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


def _call(base: str, path: str, key: str, body: dict[str, Any] | None = None) -> Any:
    request = urllib.request.Request(base + path, data=json.dumps(body).encode() if body else None,
                                     headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as answer:
        return json.loads(answer.read())


# About 7 minutes alone on 2 cores; the margin is for a loaded machine, since the suite's default is 600 s.
@pytest.mark.timeout(1800)
def test_500_captures_two_workers_one_sealer_with_kills(database: str, redis_url: str, tmp_path: Path,
                                                         anvil: Path) -> None:
    from sqlalchemy import create_engine, text

    from api.cli.sample_site import serve_site
    from api.service.models import MAX_CAPTURE_URLS
    from api.service.runtime import local_trust
    from api.service.settings import load_settings
    from verifier.verify import verify_package

    data_dir = tmp_path / "data"
    port = _free_port()
    env = {**os.environ, "TIEZHENG_DATA_DIR": str(data_dir), "TIEZHENG_DATABASE_URL": database,
           "TIEZHENG_REDIS_URL": redis_url, "TIEZHENG_CAPTURE_ALLOW_PRIVATE": "true",
           "TIEZHENG_BATCH_MAX_AGE_SECONDS": "2", "TIEZHENG_RATE_PER_SECOND": "1000", "TIEZHENG_RATE_BURST": "1000",
           "TIEZHENG_ANVIL": str(anvil)}
    created = subprocess.run([str(BIN / "tiezheng"), "tenants", "create", "acme"], env=env, capture_output=True,
                             text=True, timeout=120)
    assert created.returncode == 0, created.stderr
    key = re.search(r"tzk_[A-Za-z0-9_\-]+", created.stdout).group(0)  # type: ignore[union-attr]
    procs = Processes(env, tmp_path)
    base = f"http://127.0.0.1:{port}"
    try:
        procs.start("api", "serve", "--no-seal", "--port", str(port))
        procs.start("capture-1", "worker", "capture", "--processes", "1")
        procs.start("capture-2", "worker", "capture", "--processes", "1")
        sealer = procs.start("sealer", "worker", "seal", extra={"TIEZHENG_FAILPOINT": "seal:timestamped"})
        _wait(lambda: _healthy(base), 60, "the API to answer")

        with serve_site(SITE, tmp_path / "site-tls") as site:
            ids: list[str] = []
            for start in range(0, CAPTURES, MAX_CAPTURE_URLS):
                urls = [f"{site.http_url}index.html?item={i}"
                        for i in range(start, min(start + MAX_CAPTURE_URLS, CAPTURES))]
                ids += _call(base, "/v1/captures", key, {"urls": urls, "note": "scale test"})["evidence_ids"]
            assert len(ids) == len(set(ids)) == CAPTURES

            engine = create_engine(database)

            def count(sql: str) -> int:
                with engine.connect() as connection:
                    return int(connection.execute(text(sql)).scalar_one())

            # Kill one capture worker, browser and all, once it is well into its share.
            _wait(lambda: count("select count(*) from seal_item") >= CAPTURES // 5, 600, "a fifth to be captured")
            procs.kill("capture-1")
            # The failpoint fires after the first batch is time-stamped; then the sealer comes back.
            _wait(lambda: sealer.poll() is not None, 600, "the sealer's failpoint")
            assert sealer.returncode == -signal.SIGKILL
            assert count("select count(*) from seal_batch where state = 'timestamped'") >= 1
            procs.start("sealer-restarted", "worker", "seal")

            _wait(lambda: count("select count(*) from seal_item") == CAPTURES, DEADLINE_SECONDS, "every capture")
            _wait(lambda: count("select count(*) from seal_item where state = 'attached'") == CAPTURES,
                  600, "every item sealed")
        assert count("select count(*) from seal_item where batch_id is null") == 0
        assert count("select count(distinct evidence_id) from seal_item") == CAPTURES
        with engine.connect() as connection:
            anchors = connection.execute(text("select id, anchor_txs from seal_batch")).all()
            packages = [Path(p) for (p,) in connection.execute(text("select package_path from seal_item")).all()]
        assert all(len(json.loads(txs)) == 1 for _, txs in anchors), "a batch was anchored twice"
        assert count("select count(*) from evidence where error is not null") == 0

        trust = local_trust(load_settings(data_dir))
        failed = [p.name for p in packages if not verify_package(p, trust).verified]
        assert failed == []
    finally:
        procs.stop_all()
        subprocess.run([str(BIN / "tiezheng"), "chain", "down"], env=env, capture_output=True, timeout=60)


def _healthy(base: str) -> bool:
    try:
        with urllib.request.urlopen(base + "/healthz", timeout=2) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


def _wait(condition: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.5)
