"""Run the real service for tests: `tiezheng serve` as its own process, on SQLite or PostgreSQL."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

BIN = Path(sys.executable).parent
READY_TIMEOUT = 90.0
SEAL_TIMEOUT = 90.0
#: Where PostgreSQL is looked for; tests that need it skip with this in the reason when it does not answer.
POSTGRES_ADMIN_URL = os.environ.get("TIEZHENG_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")

#: Settings of every test server: quick batches, small limits, captures of loopback pages allowed.
TEST_SETTINGS = {
    "TIEZHENG_BATCH_MAX_AGE_SECONDS": "0.5",
    "TIEZHENG_UPLOAD_MAX_BYTES": str(256 << 10),
    "TIEZHENG_VERIFY_MAX_BYTES": str(1 << 20),
    "TIEZHENG_RATE_PER_SECOND": "10",
    "TIEZHENG_RATE_BURST": "60",
    "TIEZHENG_CAPTURE_ALLOW_PRIVATE": "true",
    "TIEZHENG_WORKERS": "2",
    # One web process, so SIGKILL and failpoint tests hit the process they start; several are tested apart
    # (tests/api/test_serve_workers.py).
    "TIEZHENG_WEB_WORKERS": "1",
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def postgres_where() -> str:
    """Where PostgreSQL was looked for, without credentials, for skip reasons."""
    return POSTGRES_ADMIN_URL.rsplit("@", 1)[-1]


def postgres_database() -> str | None:
    """Create a fresh PostgreSQL database and return its SQLAlchemy URL, or None when unreachable."""
    import psycopg

    name = f"tz_test_{secrets.token_hex(4)}"
    try:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f"CREATE DATABASE {name}")
    except psycopg.Error:
        return None
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    return f"{base}/{name}"


def drop_postgres_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@dataclass
class Server:
    data_dir: Path
    database_url: str | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    #: More arguments of `tiezheng serve`, e.g. ``("--no-seal",)`` for an API process of a scale-out.
    serve_args: tuple[str, ...] = ()
    #: What answers 200 once the server is up: ``/healthz`` for an API process that does not seal (its
    #: ``/readyz`` also wants a TSA and a chain, which run beside the sealer).
    ready_path: str = "/readyz"
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir.parent / f"{self.data_dir.name}-server.log"

    @property
    def env(self) -> dict[str, str]:
        env = {**os.environ, **TEST_SETTINGS, **self.extra_env, "TIEZHENG_DATA_DIR": str(self.data_dir)}
        if self.database_url:
            env["TIEZHENG_DATABASE_URL"] = self.database_url
        return env

    def start(self) -> Server:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen([str(BIN / "tiezheng"), "serve", "--port", str(self.port), *self.serve_args],
                                        env=self.env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}{self.ready_path}", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"server not ready in {READY_TIMEOUT} s:\n{self.log()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as in a crash."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self.process = None

    def close(self) -> None:
        self.stop()
        self.cli("chain", "down", check=False)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-6000:]
        except OSError:
            return ""

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([str(BIN / "tiezheng"), *args], env=self.env, capture_output=True, text=True,
                                timeout=120)
        assert "Traceback" not in result.stdout + result.stderr, result.stderr
        if check:
            assert result.returncode == 0, result.stdout + result.stderr
        return result

    def new_tenant(self, name: str | None = None) -> dict[str, Any]:
        """Create a tenant through the CLI; returns {"tenant", "tenant_id", "key_prefix", "api_key"}."""
        created: dict[str, Any] = json.loads(
            self.cli("tenants", "create", name or f"tenant-{secrets.token_hex(3)}", "--json").stdout)
        return created

    def client(self, key: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)


def wait_for_status(client: httpx.Client, evidence_id: str, wanted: set[str],
                    timeout: float = SEAL_TIMEOUT) -> dict[str, Any]:
    """Poll GET /v1/evidence/{id} until its status is one of ``wanted``; returns the last body."""
    deadline = time.monotonic() + timeout
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        reply = client.get(f"/v1/evidence/{evidence_id}")
        assert reply.status_code == 200, reply.text
        body = reply.json()
        if body["status"] in wanted:
            return body
        time.sleep(0.3)
    raise AssertionError(f"{evidence_id} still {body.get('status')} after {timeout} s: {body}")
