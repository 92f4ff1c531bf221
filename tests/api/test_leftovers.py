"""Nothing is left behind: uploads killed mid-body (client or server), and the devnet of a stopped service."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.conftest import start_server
from tests.api.server import TEST_SETTINGS, Server

#: Half of the allowed body: the server stores what came and waits for the rest.
DECLARED = int(TEST_SETTINGS["TIEZHENG_UPLOAD_MAX_BYTES"]) - 4096
SENT = DECLARED // 2
STALE = 2 * 3600  # older than the sweeper's limit for files without a lock

#: A client in a process of its own: sends the headers and half of the body, then waits to be killed.
SLOW_CLIENT = """
import socket, sys, time
port, key, declared, sent = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
head = (b'--b\\r\\nContent-Disposition: form-data; name="file"; filename="big.bin"\\r\\n\\r\\n')
sock = socket.create_connection(("127.0.0.1", port))
sock.sendall(b"POST /v1/uploads HTTP/1.1\\r\\nHost: x\\r\\nAuthorization: Bearer " + key.encode()
             + b"\\r\\nContent-Type: multipart/form-data; boundary=b\\r\\nContent-Length: "
             + str(declared).encode() + b"\\r\\n\\r\\n" + head + b"z" * sent)
print("sent", flush=True)
time.sleep(600)
"""


@pytest.fixture()
def service(anvil: Path, tmp_path: Path) -> Iterator[Server]:
    yield from start_server(tmp_path, "sqlite")


def _slow_client(server: Server, key: str) -> subprocess.Popen[str]:
    client = subprocess.Popen([sys.executable, "-c", SLOW_CLIENT, str(server.port), key, str(DECLARED), str(SENT)],
                              stdout=subprocess.PIPE, text=True)
    assert client.stdout is not None and client.stdout.readline().strip() == "sent"
    return client


def _bodies(server: Server) -> list[Path]:
    """Request bodies being received, in any process folder of the data dir."""
    return list((server.data_dir / "tmp").glob("proc-*/form-*/*/content"))


def _wait(condition: Any, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"still not {what} after {timeout} s")


def _plant(path: Path, *, age: float, folder: bool = False) -> Path:
    if folder:
        path.mkdir(parents=True)
        (path / "upload-0").write_bytes(b"x" * 1000)
        os.utime(path / "upload-0", (time.time() - age,) * 2)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"half a package")
    os.utime(path, (time.time() - age,) * 2)
    return path


def test_a_client_killed_mid_body_leaves_nothing(service: Server) -> None:
    key = service.new_tenant()["api_key"]
    client = _slow_client(service, key)
    _wait(lambda: any(body.stat().st_size > 0 for body in _bodies(service)), "receiving")
    client.send_signal(signal.SIGKILL)
    client.wait()
    _wait(lambda: not _bodies(service) and not list((service.data_dir / "tmp").glob("proc-*/form-*")),
          "cleaned up after the client went away")
    with service.client(key) as http:
        assert http.get("/v1/evidence").json()["count"] == 0  # nothing half-received was accepted


def test_a_server_killed_mid_upload_leaves_nothing_after_the_next_start(service: Server) -> None:
    key = service.new_tenant()["api_key"]
    client = _slow_client(service, key)
    try:
        _wait(lambda: any(body.stat().st_size > 0 for body in _bodies(service)), "receiving")
        dead_pid = service.process.pid if service.process else 0
        service.kill()
    finally:
        client.kill()
        client.wait()
    tmp = service.data_dir / "tmp"
    assert _bodies(service) and list(tmp.glob(f"proc-{dead_pid}-*")), "the kill left nothing to clean: no test"
    packages = service.data_dir / "packages"
    stale_package = _plant(packages / ".20260101T000000Z-x.wacz.abc123.tmp", age=STALE)
    live_package = _plant(packages / ".20260101T000000Z-y.wacz.def456.tmp", age=5)
    stale_copy = _plant(tmp / ".package.old.wacz", age=STALE)
    stale_work = _plant(Path(tempfile.gettempdir()) / f"tiezheng-upload-test{os.getpid()}x", age=STALE, folder=True)
    fresh_work = _plant(Path(tempfile.gettempdir()) / f"tiezheng-upload-test{os.getpid()}y", age=5, folder=True)
    try:
        service.start()
        assert not _bodies(service) and not list(tmp.glob(f"proc-{dead_pid}-*"))
        assert not stale_package.exists() and not stale_copy.exists() and not stale_work.exists()
        assert live_package.exists() and fresh_work.exists()  # someone may still be writing those
        new_pid = service.process.pid if service.process else 0
        assert sorted(p.name.split("-")[1] for p in tmp.iterdir()) == [str(new_pid)] * 2  # its folder and lock
    finally:
        subprocess.run(["rm", "-rf", str(fresh_work), str(stale_work)], check=False)


@pytest.fixture()
def quick_sweeper(anvil: Path, tmp_path: Path) -> Iterator[Server]:
    yield from start_server(tmp_path, "sqlite", TIEZHENG_SWEEP_INTERVAL_SECONDS="0.5")


def test_the_service_sweeps_periodically(quick_sweeper: Server) -> None:
    stale = _plant(quick_sweeper.data_dir / "packages" / ".20260101T000000Z-z.wacz.0a1b2c.tmp", age=STALE)
    orphan = quick_sweeper.data_dir / "tmp" / "proc-999999999-deadbeef"  # a folder whose lock file is gone
    _plant(orphan, age=STALE, folder=True)
    _wait(lambda: not stale.exists() and not orphan.exists(), "swept while the service runs")
    assert quick_sweeper.process is not None and quick_sweeper.process.poll() is None


def test_serve_stops_the_devnet_it_started_even_after_a_crash(service: Server) -> None:
    def devnet() -> dict[str, Any]:
        return dict(json.loads(service.cli("chain", "status", "--json").stdout))

    assert devnet()["rpc_url"] is not None
    service.kill()  # no shutdown code runs: the devnet outlives the service
    assert devnet()["rpc_url"] is not None
    service.start()  # the next service takes the orphaned devnet over ...
    service.stop()  # ... and stops it on a clean stop
    assert devnet()["rpc_url"] is None
    assert not list((service.data_dir / "tmp").glob("proc-*"))  # and its temp folder went with it
    service.cli("chain", "up")  # a devnet started on purpose is left alone
    service.start()
    service.stop()
    assert devnet()["rpc_url"] is not None


def test_a_killed_cli_upload_leaves_nothing_after_the_next_command(tmp_path: Path) -> None:
    """`tiezheng upload` SIGKILLed while packaging: its copies go at the next writing command's start."""
    big = tmp_path / "big.bin"
    with big.open("wb") as out:
        for _ in range(64):
            out.write(os.urandom(1 << 20))
    data = tmp_path / "data"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("TIEZHENG_")}, "TIEZHENG_DATA_DIR": str(data)}
    tiezheng = str(Path(sys.executable).parent / "tiezheng")
    upload = subprocess.Popen([tiezheng, "upload", str(big)], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    work = data / "tmp"
    try:
        _wait(lambda: any(p.stat().st_size > 0 for p in work.glob("proc-*/tiezheng-upload-*/*")), "packaging")
    finally:
        upload.send_signal(signal.SIGKILL)
        upload.wait()
    assert list(work.glob("proc-*/tiezheng-upload-*")), "the kill left nothing to clean: no test"
    small = tmp_path / "small.txt"
    small.write_text("next")
    done = subprocess.run([tiezheng, "upload", str(small), "--json"], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert list(work.iterdir()) == []  # the dead upload's folder swept, the new one's released on exit
    assert [p.name for p in (data / "packages").iterdir()] == [Path(json.loads(done.stdout)["package"]).name]
