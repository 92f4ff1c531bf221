"""Load on the service: concurrent clients upload small files; the server is SIGKILLed midway.

    python benchmarks/api_load.py [--duration 60] [--clients 50] [--size 2048] [--kill-at 0.5 | --no-kill]
                             [--database-url URL] [--json]

It starts `tiezheng serve` (embedded TSA and devnet) in a fresh data dir, creates a tenant, and runs
``--clients`` clients, each uploading one file after another for ``--duration`` seconds. At
``--kill-at`` of the run it kills the server with SIGKILL (no shutdown code runs), counts what the
database holds of the uploads that were answered 202, restarts the server, and lets the clients go
on. Afterwards it waits until every accepted upload is sealed and counts again.

Reported: requests/s (202 answers per second of load), p50/p99 latency of accepted uploads, the
refused or failed requests (mostly while the server was down), and the counts: accepted before the
kill and present after the restart, accepted in all, sealed, lost (must be 0).

Traffic goes only to the server this script starts on 127.0.0.1; every loop is bounded in time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text

BIN = Path(sys.executable).parent
READY_TIMEOUT = 90.0
#: After the load, how long the sealer gets to seal everything accepted.
SEAL_TIMEOUT = 300.0
RETRY_PAUSE = 0.05


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Server:
    data_dir: Path
    database_url: str | None
    port: int = field(default_factory=_free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        env = {**os.environ, "TIEZHENG_DATA_DIR": str(self.data_dir), "TIEZHENG_BATCH_MAX_AGE_SECONDS": "1",
               # The benchmark measures the service, not the per-key limiter (documented in api/ratelimit.py).
               "TIEZHENG_RATE_PER_SECOND": "1000000", "TIEZHENG_RATE_BURST": "1000000"}
        if self.database_url:
            env["TIEZHENG_DATABASE_URL"] = self.database_url
        return env

    def cli(self, *args: str) -> str:
        return subprocess.run([str(BIN / "tiezheng"), *args], env=self.env, capture_output=True, text=True,
                              check=True, timeout=120).stdout

    def start(self) -> float:
        """Start and wait for /readyz; returns the seconds it took."""
        began = time.monotonic()
        with (self.data_dir.parent / "server.log").open("ab") as log:
            self.process = subprocess.Popen([str(BIN / "tiezheng"), "serve", "--port", str(self.port)],
                                            env=self.env, stdout=log, stderr=subprocess.STDOUT)
        while time.monotonic() - began < READY_TIMEOUT:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}; see {self.data_dir.parent}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return time.monotonic() - began
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("server not ready in time")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        subprocess.run([str(BIN / "tiezheng"), "chain", "down"], env=self.env, capture_output=True, timeout=60)


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    accepted: list[str] = field(default_factory=list)
    refused: int = 0
    failed: int = 0


async def _client(base: str, key: str, size: int, stop_at: float, tally: Tally) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as client:
        while time.monotonic() < stop_at:
            body = secrets.token_bytes(size)
            began = time.monotonic()
            try:
                reply = await client.post("/v1/uploads", files={"file": ("exhibit.bin", body)})
            except httpx.HTTPError:
                tally.failed += 1  # the server is down (killed) or restarting
                await asyncio.sleep(RETRY_PAUSE)
                continue
            if reply.status_code == 202:
                tally.latencies.append(time.monotonic() - began)
                tally.accepted.extend(reply.json()["evidence_ids"])
            else:
                tally.refused += 1


def _states(database: str, ids: list[str]) -> dict[str, int]:
    """How many of ``ids`` the database holds, and how many of those are sealed."""
    engine = create_engine(database)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT e.id, s.state FROM evidence e LEFT JOIN seal_item s "
                                     "ON s.evidence_id = e.evidence_id")).all()
    finally:
        engine.dispose()
    state = dict(rows)
    present = [i for i in ids if i in state]
    return {"present": len(present), "sealed": sum(1 for i in present if state[i] == "attached"),
            "rows_in_database": len(state)}


async def _load(server: Server, key: str, args: argparse.Namespace) -> dict[str, Any]:
    tally = Tally()
    began = time.monotonic()
    stop_at = began + args.duration
    clients = [asyncio.create_task(_client(server.url, key, args.size, stop_at, tally)) for _ in range(args.clients)]
    crash: dict[str, Any] = {}
    if not args.no_kill:
        await asyncio.sleep(args.duration * args.kill_at)
        server.kill()
        before = list(tally.accepted)
        restart_seconds = await asyncio.to_thread(server.start)
        # Answers that arrived before the kill are all in the database, committed before the 202.
        crash = {"killed_at_s": round(args.duration * args.kill_at, 1), "accepted_before_kill": len(before),
                 "present_after_restart": _states(args.database, before)["present"],
                 "restart_seconds": round(restart_seconds, 2)}
    await asyncio.gather(*clients)
    elapsed = time.monotonic() - began
    latencies = sorted(tally.latencies)
    quantiles = statistics.quantiles(latencies, n=100) if len(latencies) >= 2 else latencies * 99
    return {"clients": args.clients, "duration_s": round(elapsed, 1), "file_bytes": args.size,
            "requests_per_s": round(len(tally.accepted) / elapsed, 1),
            "latency_p50_ms": round(quantiles[49] * 1000, 1) if quantiles else None,
            "latency_p99_ms": round(quantiles[98] * 1000, 1) if quantiles else None,
            "accepted": len(tally.accepted), "refused": tally.refused, "failed_while_down": tally.failed,
            **crash, "_ids": tally.accepted}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load (default 60)")
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients (default 50)")
    parser.add_argument("--size", type=int, default=2048, help="bytes per uploaded file (default 2048)")
    parser.add_argument("--kill-at", type=float, default=0.5, help="fraction of the run at which to SIGKILL")
    parser.add_argument("--no-kill", action="store_true", help="do not kill the server")
    parser.add_argument("--database-url", default=None, help="PostgreSQL URL (default: SQLite in the data dir)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="tiezheng-bench-api-") as tmp:
        server = Server(Path(tmp) / "data", args.database_url)
        args.database = args.database_url or f"sqlite:///{server.data_dir / 'tiezheng.db'}"
        try:
            server.data_dir.mkdir(parents=True)
            key = json.loads(server.cli("tenants", "create", "bench", "--json"))["api_key"]
            server.start()
            result = asyncio.run(_load(server, key, args))
            ids = result.pop("_ids")
            deadline = time.monotonic() + SEAL_TIMEOUT
            waited = time.monotonic()
            while (counts := _states(args.database, ids))["sealed"] < len(ids) and time.monotonic() < deadline:
                time.sleep(0.5)
            result.update({"present_at_end": counts["present"], "sealed": counts["sealed"],
                           "rows_in_database": counts["rows_in_database"],
                           "lost": len(ids) - counts["present"], "unsealed": len(ids) - counts["sealed"],
                           "seal_wait_s": round(time.monotonic() - waited, 1)})
        finally:
            server.stop()
    if args.json:
        print(json.dumps(result))
    else:
        for name, value in result.items():
            print(f"{name:>24}: {value}")
    return 0 if result["lost"] == 0 and result["unsealed"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
