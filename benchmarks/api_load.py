"""Load on the service: concurrent clients upload small files; the server is SIGKILLed midway.

    python benchmarks/api_load.py [--duration 60] [--clients 50] [--size 2048] [--kill-at 0.5 | --no-kill]
                             [--workers N] [--database-url URL] [--json]
    python benchmarks/api_load.py --compare [--client-counts 1,10,50] [--duration 20] [--workers N] [--json]

It starts `tiezheng serve` (embedded TSA and devnet) in a fresh data dir, creates a tenant, and runs
``--clients`` clients, each uploading one file after another for ``--duration`` seconds. At
``--kill-at`` of the run it kills the server with SIGKILL (no shutdown code runs), counts what the
database holds of the uploads that were answered 202, restarts the server, and lets the clients go
on. Afterwards it waits until every accepted upload is sealed and counts again.

Reported: requests/s (202 answers per second of load), p50/p99 latency of accepted uploads, the
refused or failed requests (mostly while the server was down), and the counts: accepted before the
kill and present after the restart, accepted in all, sealed, lost (must be 0).

With ``--compare`` there is no kill: for each of ``--client-counts`` it loads a bare FastAPI upload
endpoint (benchmarks/bare_upload_app.py: the same multipart parse, one key lookup, an fsync'd write,
one SQLite row) and then ``tiezheng serve``, both with the same uvicorn worker count, and reports
uploads/s, p50 and p99 of each and the ratios service/bare. CPU per upload is the server processes'
user+system time over the accepted uploads (read from /proc, children included).

Traffic goes only to the servers this script starts on 127.0.0.1; every loop is bounded in time.
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

from api.service.settings import Settings
from api.web.serve_workers import default_workers

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[1]
READY_TIMEOUT = 90.0
#: After the load, how long the sealer gets to seal everything accepted.
SEAL_TIMEOUT = 300.0
RETRY_PAUSE = 0.05
#: The service's own sealing cadence, used by --compare unless told otherwise.
SERVICE_BATCH_AGE = float(Settings.model_fields["batch_max_age_seconds"].default)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_port_free(port: int, timeout: float = 10.0) -> None:
    """After a kill, wait until no orphan still listens on ``port`` (a restart must be able to bind)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) != 0:
                return
        time.sleep(0.05)


def _group_cpu_seconds(group: int) -> float:
    """User+system seconds of every live process in ``group``, with the children they reaped."""
    ticks = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process ended meanwhile
        if int(fields[2]) == group:
            ticks += sum(int(value) for value in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


@dataclass
class Server:
    data_dir: Path
    database_url: str | None
    workers: int | None = None
    batch_age: float = 1.0
    port: int = field(default_factory=_free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        env = {**os.environ, "TIEZHENG_DATA_DIR": str(self.data_dir),
               "TIEZHENG_BATCH_MAX_AGE_SECONDS": str(self.batch_age),
               # The benchmark measures the service, not the per-key limiter (documented in api/service/ratelimit.py).
               "TIEZHENG_RATE_PER_SECOND": "1000000", "TIEZHENG_RATE_BURST": "1000000"}
        if self.database_url:
            env["TIEZHENG_DATABASE_URL"] = self.database_url
        return env

    def cli(self, *args: str) -> str:
        return subprocess.run([str(BIN / "tiezheng"), *args], env=self.env, capture_output=True, text=True,
                              check=True, timeout=120).stdout

    def command(self) -> list[str]:
        workers = [] if self.workers is None else ["--workers", str(self.workers)]
        return [str(BIN / "tiezheng"), "serve", "--port", str(self.port), *workers]

    def start(self) -> float:
        """Start and wait for /readyz; returns the seconds it took."""
        began = time.monotonic()
        with (self.data_dir.parent / "server.log").open("ab") as log:
            # A session of its own: the kill takes the whole process group (supervisor and workers).
            self.process = subprocess.Popen(self.command(), env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)
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
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        _wait_port_free(self.port)

    def cpu_seconds(self) -> float:
        """User+system CPU of the server's process group so far (live processes and reaped children)."""
        assert self.process is not None
        return _group_cpu_seconds(self.process.pid)

    def stop(self) -> None:
        _stop(self.process)
        subprocess.run([str(BIN / "tiezheng"), "chain", "down"], env=self.env, capture_output=True, timeout=60)


def _stop(process: subprocess.Popen[bytes] | None) -> None:
    """Stop a server gracefully (SIGTERM), and its whole process group if it does not go in 30 s."""
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


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


@dataclass
class BareServer:
    """benchmarks/bare_upload_app.py under uvicorn, started the way ``tiezheng serve`` starts."""

    data_dir: Path
    workers: int
    port: int = field(default_factory=_free_port)
    process: subprocess.Popen[bytes] | None = None
    key: str = "bench-key"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = {**os.environ, "BARE_DATA_DIR": str(self.data_dir), "BARE_API_KEY": self.key,
               "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
        self.data_dir.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "uvicorn", "benchmarks.bare_upload_app:create_app", "--factory",
                   "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning",
                   "--timeout-graceful-shutdown", "10", "--workers", str(self.workers)]
        with (self.data_dir.parent / "bare.log").open("ab") as log:
            self.process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
                                            start_new_session=True)
        began = time.monotonic()
        while time.monotonic() - began < READY_TIMEOUT:
            if self.process.poll() is not None:
                raise RuntimeError(f"bare app exited with {self.process.returncode}; see {self.data_dir.parent}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("bare app not ready in time")

    def cpu_seconds(self) -> float:
        assert self.process is not None
        return _group_cpu_seconds(self.process.pid)

    def stop(self) -> None:
        _stop(self.process)


async def _measure(url: str, key: str, clients: int, size: int, duration: float,
                   cpu: Any) -> dict[str, Any]:
    """Load ``url`` with ``clients`` clients for ``duration`` seconds; uploads/s, latency and CPU per upload."""
    tally = Tally()
    cpu_before = cpu()
    began = time.monotonic()
    await asyncio.gather(*(_client(url, key, size, began + duration, tally) for _ in range(clients)))
    elapsed = time.monotonic() - began
    cpu_used = cpu() - cpu_before
    latencies = sorted(tally.latencies)
    quantiles = statistics.quantiles(latencies, n=100) if len(latencies) >= 2 else latencies * 99
    accepted = len(tally.accepted)
    return {"uploads_per_s": round(accepted / elapsed, 1),
            "p50_ms": round(quantiles[49] * 1000, 1) if quantiles else None,
            "p99_ms": round(quantiles[98] * 1000, 1) if quantiles else None,
            "cpu_ms_per_upload": round(cpu_used * 1000 / accepted, 2) if accepted else None,
            "accepted": accepted, "refused": tally.refused, "failed": tally.failed}


def _ratio(ours: float | None, floor: float | None) -> float | None:
    return round(ours / floor, 2) if ours is not None and floor else None


def compare(args: argparse.Namespace) -> dict[str, Any]:
    """The service against the bare endpoint at each client count, in one run."""
    counts = [int(n) for n in args.client_counts.split(",")]
    workers = args.workers or default_workers()  # what `tiezheng serve` picks
    rows = []
    with tempfile.TemporaryDirectory(prefix="tiezheng-bench-api-") as tmp:
        bare = BareServer(Path(tmp) / "bare" / "data", workers)
        server = Server(Path(tmp) / "service" / "data", args.database_url, workers, args.batch_age or SERVICE_BATCH_AGE)
        try:
            bare.start()
            server.data_dir.mkdir(parents=True)
            key = json.loads(server.cli("tenants", "create", "bench", "--json"))["api_key"]
            server.start()
            for clients in counts:
                floor = asyncio.run(_measure(bare.url, bare.key, clients, args.size, args.duration, bare.cpu_seconds))
                ours = asyncio.run(_measure(server.url, key, clients, args.size, args.duration, server.cpu_seconds))
                rows.append({"clients": clients, "bare": floor, "tiezheng": ours,
                             "throughput_ratio": _ratio(ours["uploads_per_s"], floor["uploads_per_s"]),
                             "p50_ratio": _ratio(ours["p50_ms"], floor["p50_ms"]),
                             "p99_ratio": _ratio(ours["p99_ms"], floor["p99_ms"])})
        finally:
            bare.stop()
            server.stop()
    return {"workers": workers, "batch_max_age_s": server.batch_age, "duration_s": args.duration,
            "file_bytes": args.size, "cpus": os.cpu_count(),
            "runs": rows}


def _print_comparison(result: dict[str, Any]) -> None:
    print(f"{result['workers']} worker process(es) each, {result['cpus']} CPUs, {result['file_bytes']} B files, "
          f"{result['duration_s']} s per point, sealing batches every {result['batch_max_age_s']} s")
    print(f"{'clients':>7} {'':>9} {'uploads/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'CPU ms/up':>10}")
    for row in result["runs"]:
        for name in ("bare", "tiezheng"):
            figures = row[name]
            print(f"{row['clients']:>7} {name:>9} {figures['uploads_per_s']:>10} {figures['p50_ms']!s:>8} "
                  f"{figures['p99_ms']!s:>8} {figures['cpu_ms_per_upload']!s:>10}")
        print(f"{'':>7} {'ratio':>9} {row['throughput_ratio']!s:>10} {row['p50_ratio']!s:>8} "
              f"{row['p99_ratio']!s:>8}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load (default 60)")
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients (default 50)")
    parser.add_argument("--size", type=int, default=2048, help="bytes per uploaded file (default 2048)")
    parser.add_argument("--kill-at", type=float, default=0.5, help="fraction of the run at which to SIGKILL")
    parser.add_argument("--no-kill", action="store_true", help="do not kill the server")
    parser.add_argument("--database-url", default=None, help="PostgreSQL URL (default: SQLite in the data dir)")
    parser.add_argument("--workers", type=int, default=None,
                        help="server worker processes (default: `tiezheng serve`'s own choice, min(2, CPUs))")
    parser.add_argument("--compare", action="store_true",
                        help="no kill: measure the service against the bare upload endpoint")
    parser.add_argument("--batch-age", type=float, default=None,
                        help="TIEZHENG_BATCH_MAX_AGE_SECONDS of the server (default 1, so the kill run seals "
                             "quickly; with --compare the service's own default, 60)")
    parser.add_argument("--client-counts", default="1,10,50", help="with --compare: client counts (default 1,10,50)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if args.compare:
        comparison = compare(args)
        if args.json:
            print(json.dumps(comparison))
        else:
            _print_comparison(comparison)
        return 0
    with tempfile.TemporaryDirectory(prefix="tiezheng-bench-api-") as tmp:
        server = Server(Path(tmp) / "data", args.database_url, args.workers, args.batch_age or 1.0)
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
