"""Scale-out end to end with no shared file system: every process its own data dir.

Two API processes (`tiezheng serve --no-seal` on two ports), two capture workers (`tiezheng worker
capture`) and one sealer (`tiezheng worker seal`) share only PostgreSQL, Redis, an S3-compatible
object store (s3rver) and the operator key in a SoftHSM2 token; each has a data dir of its own.
500 captures of local pages go in through both APIs. One capture worker is SIGKILLed mid-run (with
its browser), and so is one API process; the sealer kills itself right after a batch is time-stamped
and before it is anchored (a failpoint), and is restarted. Every accepted item must end sealed
exactly once, with one anchor transaction per batch, and every package downloaded through the API
(from a fresh API process, which never saw a package file) must verify.
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

from tests.s3server import BUCKET, S3_ENV, running_s3rver, s3rver_missing
from tests.softhsm import make_token, softhsm_conf, softhsm_module, token_env

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


@pytest.fixture()
def s3_endpoint(tmp_path: Path) -> Iterator[str]:
    reason = s3rver_missing()
    if reason:
        pytest.skip(reason)
    with running_s3rver(tmp_path / "s3rver") as endpoint:
        yield endpoint


@pytest.fixture()
def token_settings(tmp_path: Path) -> dict[str, str]:
    """The operator key made inside a private SoftHSM2 token; the settings every signing process gets."""
    module = softhsm_module()
    if module is None:
        pytest.skip("SoftHSM2 is not installed (Debian package softhsm2)")
    conf = softhsm_conf(tmp_path / "softhsm")
    previous = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    try:
        config = make_token(module, "tiezheng-scale", "operator")
    finally:
        if previous is None:
            del os.environ["SOFTHSM2_CONF"]
        else:
            os.environ["SOFTHSM2_CONF"] = previous
    return {"SOFTHSM2_CONF": str(conf), **token_env(config)}


class Processes:
    """Each process started with a data dir of its own (``<tmp>/<data_dir>``), none shared."""

    def __init__(self, env: dict[str, str], root: Path) -> None:
        self.env, self.root, self.running = env, root, {}  # type: ignore[var-annotated]

    def start(self, name: str, *args: str, data_dir: str | None = None,
              extra: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        log = (self.root / f"{name}.log").open("ab")
        own = {"TIEZHENG_DATA_DIR": str(self.root / (data_dir or name))}
        process = subprocess.Popen([str(BIN / "tiezheng"), *args], env={**self.env, **own, **(extra or {})},
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


def _download(base: str, row_id: str, key: str, target: Path) -> Path:
    request = urllib.request.Request(f"{base}/v1/evidence/{row_id}/package", headers={"Authorization": f"Bearer {key}"})
    with urllib.request.urlopen(request, timeout=120) as answer:
        target.write_bytes(answer.read())
    return target


# About 7 minutes alone on 2 cores; the margin is for a loaded machine, since the suite's default is 600 s.
@pytest.mark.timeout(1800)
def test_500_captures_two_apis_two_workers_one_sealer_no_shared_dir(
        database: str, redis_url: str, s3_endpoint: str, token_settings: dict[str, str], tmp_path: Path,
        anvil: Path) -> None:
    from sqlalchemy import create_engine, text

    from api.cli.sample_site import serve_site
    from api.service.models import MAX_CAPTURE_URLS
    from verifier.trust import load_trust
    from verifier.verify import verify_package

    ports = _free_port(), _free_port()
    env = {**os.environ, **S3_ENV, **token_settings, "TIEZHENG_DATABASE_URL": database,
           "TIEZHENG_REDIS_URL": redis_url, "TIEZHENG_BLOB_URL": f"s3://{BUCKET}/scale",
           "TIEZHENG_S3_ENDPOINT_URL": s3_endpoint, "TIEZHENG_API_KEY_SECRET": secrets.token_hex(32),
           "TIEZHENG_CAPTURE_ALLOW_PRIVATE": "true", "TIEZHENG_BATCH_MAX_AGE_SECONDS": "2",
           "TIEZHENG_RATE_PER_SECOND": "1000", "TIEZHENG_RATE_BURST": "1000", "TIEZHENG_ANVIL": str(anvil)}
    procs = Processes(env, tmp_path)
    created = subprocess.run([str(BIN / "tiezheng"), "tenants", "create", "acme"], capture_output=True, text=True,
                             env={**env, "TIEZHENG_DATA_DIR": str(tmp_path / "admin")}, timeout=120)
    assert created.returncode == 0, created.stderr
    key = re.search(r"tzk_[A-Za-z0-9_\-]+", created.stdout).group(0)  # type: ignore[union-attr]
    bases = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        for number, port in enumerate(ports, 1):
            procs.start(f"api-{number}", "serve", "--no-seal", "--port", str(port))
        procs.start("capture-1", "worker", "capture", "--processes", "1")
        procs.start("capture-2", "worker", "capture", "--processes", "1")
        sealer = procs.start("sealer", "worker", "seal", extra={"TIEZHENG_FAILPOINT": "seal:timestamped"})
        for base in bases:
            _wait(lambda base=base: _healthy(base), 60, f"the API at {base} to answer")

        with serve_site(SITE, tmp_path / "site-tls") as site:
            ids: list[str] = []
            for number, start in enumerate(range(0, CAPTURES, MAX_CAPTURE_URLS)):
                urls = [f"{site.http_url}index.html?item={i}"
                        for i in range(start, min(start + MAX_CAPTURE_URLS, CAPTURES))]
                # No session video: this test is about scale-out, and 500 encodes cost minutes on 2 cores
                # (the video has its own tests).
                ids += _call(bases[number % 2], "/v1/captures", key,
                             {"urls": urls, "note": "scale test", "video": False})[
                    "evidence_ids"]
            assert len(ids) == len(set(ids)) == CAPTURES

            engine = create_engine(database)

            def count(sql: str) -> int:
                with engine.connect() as connection:
                    return int(connection.execute(text(sql)).scalar_one())

            # Kill one API process (its relay may hold unpublished rows: the other one's takes them over),
            # then one capture worker, browser and all, once it is well into its share.
            procs.kill("api-2")
            _wait(lambda: count("select count(*) from seal_item") >= CAPTURES // 5, 600, "a fifth to be captured")
            procs.kill("capture-1")
            # The failpoint fires after the first batch is time-stamped; then the sealer comes back.
            _wait(lambda: sealer.poll() is not None, 600, "the sealer's failpoint")
            assert sealer.returncode == -signal.SIGKILL
            assert count("select count(*) from seal_batch where state = 'timestamped'") >= 1
            procs.start("sealer-restarted", "worker", "seal", data_dir="sealer")  # the same host, restarted

            _wait(lambda: count("select count(*) from seal_item") == CAPTURES, DEADLINE_SECONDS, "every capture")
            _wait(lambda: count("select count(*) from seal_item where state = 'attached'") == CAPTURES,
                  600, "every item sealed")
        assert count("select count(*) from seal_item where batch_id is null") == 0
        assert count("select count(distinct evidence_id) from seal_item") == CAPTURES
        assert count("select count(*) from seal_item_proof") == CAPTURES
        assert count("select count(*) from seal_item where package_path <> ''") == 0  # no process names a file
        with engine.connect() as connection:
            anchors = connection.execute(text("select id, anchor_txs from seal_batch")).all()
        assert all(len(json.loads(txs)) == 1 for _, txs in anchors), "a batch was anchored twice"
        assert count("select count(*) from evidence where error is not null") == 0

        # Downloads through a fresh API process, on a data dir that never held a package.
        procs.start("api-3", "serve", "--no-seal", "--port", str(ports[1]))
        _wait(lambda: _healthy(bases[1]), 60, "the restarted API to answer")
        trust_file = tmp_path / "trust.toml"
        exported = subprocess.run([str(BIN / "tiezheng"), "trust", "export", str(trust_file)], capture_output=True,
                                  text=True, env={**env, "TIEZHENG_DATA_DIR": str(tmp_path / "sealer")}, timeout=120)
        assert exported.returncode == 0, exported.stderr
        trust = load_trust(trust_file)
        downloads = tmp_path / "downloads"
        downloads.mkdir()
        failed = []
        for number, row_id in enumerate(ids):
            package = _download(bases[number % 2], row_id, key, downloads / f"{row_id}.wacz")
            if not verify_package(package, trust).verified:
                failed.append(row_id)
        assert failed == []
        data_dirs = [tmp_path / name for name in ("api-1", "api-2", "api-3", "capture-1", "capture-2", "sealer")]
        assert not any((folder / "blobs").exists() for folder in data_dirs)  # packages live in S3 only
        assert [p for folder in data_dirs for p in folder.glob("packages/*.wacz")] == []  # nor a copy on a host
    finally:
        procs.stop_all()
        subprocess.run([str(BIN / "tiezheng"), "chain", "down"], capture_output=True, timeout=60,
                       env={**env, "TIEZHENG_DATA_DIR": str(tmp_path / "sealer")})


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
