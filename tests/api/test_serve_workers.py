"""`tiezheng serve --workers 2`: two web processes share the port, one process seals, nothing twice.

The real service on SQLite with the embedded TSA and devnet: concurrent uploads from fresh
connections (so both web processes take some), every one sealed exactly once, /readyz answering
from a web process that runs no sealer; a web process that dies is replaced; and a SIGKILLed
supervisor takes its web processes with it, so a restart can bind the port again.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from tests.api.server import Server, wait_for_status

UPLOADS = 24
#: How long the web processes get to notice their supervisor is gone (they poll every 0.25 s).
ORPHAN_TIMEOUT = 10.0


def _children(pid: int) -> set[int]:
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def _web_processes(pid: int) -> set[int]:
    """The web processes the supervisor spawned (multiprocessing's resource tracker excluded)."""
    return {child for child in _children(pid)
            if b"multiprocessing.spawn" in Path(f"/proc/{child}/cmdline").read_bytes()}


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _wait_serving(server: Server, processes: int) -> None:
    """Until ``processes`` web processes have finished starting (uvicorn logs one line for each)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.log_path.read_text(errors="replace").count("Application startup complete.") >= processes:
            return
        time.sleep(0.2)
    raise AssertionError(f"not {processes} web processes up:\n{server.log()}")


def _upload(url: str, key: str, index: int) -> str:
    # A fresh connection per upload: the kernel hands each to whichever web process accepts first.
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as client:
        reply = client.post("/v1/uploads", files={"file": (f"exhibit-{index}.txt", f"exhibit {index}\n".encode())})
    assert reply.status_code == 202, reply.text
    ids: list[str] = reply.json()["evidence_ids"]
    return ids[0]


def test_two_web_processes_seal_each_upload_once(tmp_path: Path, anvil: Path) -> None:
    server = Server(data_dir=tmp_path / "data", extra_env={"TIEZHENG_WEB_WORKERS": "2"})
    server.start()
    try:
        assert server.process is not None
        supervisor = server.process.pid
        # The supervisor serves too: it spawns one more web process once it is up.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(_web_processes(supervisor)) < 1:
            time.sleep(0.2)
        web = _web_processes(supervisor)
        assert len(web) == 1, f"expected one spawned web process under {supervisor}, found {web}"
        _wait_serving(server, 2)
        key = server.new_tenant()["api_key"]
        with ThreadPoolExecutor(8) as pool:
            ids = list(pool.map(lambda i: _upload(server.url, key, i), range(UPLOADS)))
        assert len(set(ids)) == UPLOADS
        # /readyz from every web process: none runs a sealer, each probes the supervisor's TSA.
        for _ in range(6):
            ready = httpx.get(f"{server.url}/readyz", timeout=10)
            assert ready.status_code == 200, ready.text
        with server.client(key) as client:
            for evidence_id in ids:
                wait_for_status(client, evidence_id, {"sealed"})
        with sqlite3.connect(server.data_dir / "tiezheng.db") as db:
            items = db.execute("SELECT evidence_id, state, batch_id FROM seal_item").fetchall()
            batches = db.execute("SELECT COUNT(*) FROM seal_batch").fetchone()[0]
        assert sorted(row[0] for row in items) == sorted(ids)  # one sealing entry per upload, no twin
        assert {row[1] for row in items} == {"attached"} and all(row[2] for row in items)
        assert batches >= 1
        # One sealer, in the supervisor; each web process says it runs none.
        log = server.log_path.read_text(errors="replace")
        assert log.count("sealing on in this process") == 1, server.log()
        assert log.count(f"no sealing here, the supervisor (pid {supervisor}) seals") == 1, server.log()

        # A web process that dies is replaced, and the service answers on.
        victim = sorted(web)[0]
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (len(_web_processes(supervisor)) == 1
                                                    and victim not in _web_processes(supervisor)):
            time.sleep(0.2)
        assert len(_web_processes(supervisor)) == 1, "the dead web process was not replaced"
        assert _upload(server.url, key, UPLOADS)

        # A SIGKILLed supervisor leaves no web process holding the port.
        web = _web_processes(supervisor)
        server.kill()
        deadline = time.monotonic() + ORPHAN_TIMEOUT
        while time.monotonic() < deadline and any(_alive(pid) for pid in web):
            time.sleep(0.1)
        assert not any(_alive(pid) for pid in web), "web processes outlived their supervisor"
        server.start()  # binds the same port again
        assert httpx.get(f"{server.url}/readyz", timeout=10).status_code == 200
    finally:
        server.close()
