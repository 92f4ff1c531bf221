"""Capture throughput: the embedded default against Redis-queued capture workers, in one run.

Each configuration gets a fresh data dir and database (SQLite for the embedded run, PostgreSQL for
the queued ones when reachable), `tiezheng serve` for intake, and `--captures` captures of the
sample site on loopback posted through the API. Time runs from the first POST to the last package
committed; sealing is off, so this measures capture alone. Prints a table and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from api.cli.sample_site import serve_site
from api.service.models import MAX_CAPTURE_URLS

BIN = Path(sys.executable).parent
SITE = Path(__file__).resolve().parents[1] / "samples" / "site"
REDIS_URL = "redis://127.0.0.1:6379/8"
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _post(base: str, key: str, urls: list[str]) -> None:
    request = urllib.request.Request(base + "/v1/captures", data=json.dumps({"urls": urls}).encode(),
                                     headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60):
        pass


def _up(base: str) -> bool:
    try:
        with urllib.request.urlopen(base + "/healthz", timeout=2):
            return True
    except OSError:
        return False


def run(workers: int, captures: int, site_url: str, folder: Path) -> dict[str, Any]:
    """``workers`` = 0 means the embedded default (captures in the API's own threads)."""
    queued = workers > 0
    db_url = f"sqlite:///{folder / 'tiezheng.db'}"
    if queued:
        import psycopg
        import redis

        redis.Redis.from_url(REDIS_URL).flushdb()
        name = f"tz_bench_{secrets.token_hex(4)}"
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {name}")
        db_url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    env = {**os.environ, "TIEZHENG_DATA_DIR": str(folder), "TIEZHENG_DATABASE_URL": db_url,
           "TIEZHENG_CAPTURE_ALLOW_PRIVATE": "true", "TIEZHENG_RATE_PER_SECOND": "1000", "TIEZHENG_RATE_BURST": "1000"}
    if queued:
        env["TIEZHENG_REDIS_URL"] = REDIS_URL
    created = subprocess.run([str(BIN / "tiezheng"), "tenants", "create", "bench"], env=env, capture_output=True,
                             text=True, check=True)
    key = re.search(r"tzk_[A-Za-z0-9_\-]+", created.stdout).group(0)  # type: ignore[union-attr]
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    processes = [subprocess.Popen([str(BIN / "tiezheng"), "serve", "--no-seal", "--port", str(port)], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)]
    if queued:
        processes.append(subprocess.Popen([str(BIN / "tiezheng"), "worker", "capture", "--processes", str(workers)],
                                          env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                          start_new_session=True))
    engine = create_engine(db_url)
    try:
        while not _up(base):
            time.sleep(0.2)
        time.sleep(3 if queued else 0)  # let the workers launch their browsers: warm, as in production
        started = time.monotonic()
        for first in range(0, captures, MAX_CAPTURE_URLS):
            _post(base, key, [f"{site_url}index.html?n={i}" for i in range(first, min(first + MAX_CAPTURE_URLS,
                                                                                       captures))])
        while True:
            with engine.connect() as connection:
                done = connection.execute(text("select count(*) from evidence where evidence_id is not null "
                                               "or error is not null")).scalar_one()
            if done >= captures:
                break
            time.sleep(0.2)
        elapsed = time.monotonic() - started
        with engine.connect() as connection:
            failed = connection.execute(text("select count(*) from evidence where error is not null")).scalar_one()
    finally:
        for process in processes:
            os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            process.wait(30)
        engine.dispose()
        if queued:
            import psycopg

            with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
                admin.execute(f"DROP DATABASE IF EXISTS {db_url.rsplit('/', 1)[1]} WITH (FORCE)")
    return {"workers": workers, "captures": captures, "seconds": round(elapsed, 2),
            "per_minute": round(captures / elapsed * 60, 1), "failed": int(failed)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--captures", type=int, default=40)
    parser.add_argument("--workers", default="1,2,4", help="queued worker process counts to try")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="tiezheng-scale-") as workdir, \
            serve_site(SITE, Path(workdir) / "tls") as site:
        for workers in [0, *(int(w) for w in args.workers.split(","))]:
            folder = Path(workdir) / f"run-{workers}"
            folder.mkdir()
            results.append(run(workers, args.captures, site.http_url, folder))
    print(f"Capture throughput, {args.captures} captures of the sample site, {os.cpu_count()} CPUs\n")
    print(f"{'configuration':<34} {'seconds':>8} {'per minute':>11} {'failed':>7}")
    for r in results:
        name = ("embedded (in-process, 2 threads)" if r["workers"] == 0
                else f"Redis queue, {r['workers']} worker process(es)")
        print(f"{name:<34} {r['seconds']:>8.1f} {r['per_minute']:>11.1f} {r['failed']:>7}")
    print(json.dumps({"cpus": os.cpu_count(), "results": results}))


if __name__ == "__main__":
    main()
