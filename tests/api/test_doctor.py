"""`tiezheng doctor` as a real process: embedded defaults pass; broken settings are named, secrets never shown."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from anchor.devnet import Devnet
from evidence.operator_key import load_or_create
from tests.api.server import free_port

BIN = Path(sys.executable).parent
START_TIMEOUT = 20.0


def _env(data_dir: Path, **settings: str) -> dict[str, str]:
    """This process's environment without any TIEZHENG_* or AWS_* setting of the developer's, plus ``settings``."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TIEZHENG_", "AWS_")) or k == "TIEZHENG_ANVIL"}
    return {**env, "COLUMNS": "200", "TIEZHENG_DATA_DIR": str(data_dir), **settings}


def _doctor(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(BIN / "tiezheng"), "doctor", *args], env=env, capture_output=True, text=True,
                            timeout=120)
    assert "Traceback" not in result.stdout + result.stderr, result.stdout + result.stderr
    return result


def _checks(result: subprocess.CompletedProcess[str]) -> dict[str, dict[str, Any]]:
    body = json.loads(result.stdout)
    assert body["ok"] is (result.returncode == 0)
    return {check["name"]: check for check in body["checks"]}


@pytest.fixture()
def redis_url(tmp_path: Path) -> Iterator[str | None]:
    """A real Redis on a free loopback port when redis-server is installed, else None (the check skips)."""
    server = shutil.which("redis-server")
    if server is None:
        yield None
        return
    port = free_port()
    process = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
                                "no", "--dir", str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(10)


def test_embedded_defaults_pass(anvil: Path, tmp_path: Path, redis_url: str | None) -> None:
    data = tmp_path / "data"
    key = load_or_create(data / "keys" / "operator.key")
    env = _env(data, **({"TIEZHENG_REDIS_URL": redis_url} if redis_url else {}))

    result = _doctor(env, "--json")
    assert result.returncode == 0, result.stdout
    checks = _checks(result)
    assert {name for name, c in checks.items() if c["status"] == "ok"} >= {
        "data_dir", "database", "tsa", "chain", "chain_key", "blob_store", "operator_key"}
    assert checks["redis"]["status"] == ("ok" if redis_url else "skip")
    assert checks["tsa"]["reason"].startswith("embedded development TSA (started on demand)")
    assert checks["chain"]["reason"].startswith("devnet not running, started on demand")
    assert checks["database"]["reason"].startswith("sqlite at sqlite:///")
    assert key.key_id in checks["operator_key"]["reason"]

    devnet = Devnet(data, anvil=anvil, die_with_parent=True)
    devnet.start()
    try:
        running = _doctor(env)
        assert running.returncode == 0, running.stdout
        assert "devnet runs at" in running.stdout and "all checks pass" in running.stdout
    finally:
        devnet.stop()


def test_broken_settings_are_named_and_secrets_never_shown(tmp_path: Path) -> None:
    chain_key = "0x" + secrets.token_hex(32)
    env = _env(tmp_path / "data", TIEZHENG_DATABASE_URL="postgresql://postgres:db-password-1@127.0.0.1:1/none",
               TIEZHENG_RPC_URL="http://127.0.0.1:1/v3/rpc-api-key-2", TIEZHENG_CHAIN_ID="11155111",
               TIEZHENG_CHAIN_KEY=chain_key, TIEZHENG_API_KEY_SECRET="api-key-secret-3")
    secret_values = [chain_key, chain_key[2:], "db-password-1", "rpc-api-key-2", "api-key-secret-3"]

    result = _doctor(env, "--json")
    assert result.returncode == 1
    checks = _checks(result)
    assert {name for name, c in checks.items() if c["status"] == "fail"} == {"database", "chain", "chain_key"}
    assert "postgresql://postgres:***@127.0.0.1:1/none" in checks["database"]["reason"]
    assert "http://127.0.0.1:1/…" in checks["chain"]["reason"]
    assert all(checks[name]["hint"] for name in ("database", "chain", "chain_key"))
    # The key shows only as its address.
    assert "cannot read the balance of 0x" in checks["chain_key"]["reason"]

    table = _doctor(env)
    assert table.returncode == 1
    assert "FAIL" in table.stdout and "3 check(s) failed" in table.stdout
    for output in (result, table):
        for secret in secret_values:
            assert secret not in output.stdout + output.stderr

    # An API server or capture worker needs no chain key: with --no-seal its absence is no failure.
    del env["TIEZHENG_CHAIN_KEY"]
    api_host = _checks(_doctor(env, "--json", "--no-seal"))
    assert api_host["chain_key"]["status"] == "skip" and "--no-seal" in api_host["chain_key"]["reason"]
    assert _checks(_doctor(env, "--json"))["chain_key"]["status"] == "fail"
