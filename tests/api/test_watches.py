"""Watches run for real: `tiezheng serve`'s scheduler captures a local site that the test changes.

The site is a folder this test rewrites between runs: the same page (unchanged), a new price
(changed), the page deleted (404: removed) and put back (reappeared). Every run is a full capture
and a sealed package whose manifest names the run before it (``previous``). The kill tests SIGKILL
the service while the scheduler works and check, from the database, that no slot ran twice and
none was lost: every slot of the grid has exactly one row, run or missed with its reason.
"""

from __future__ import annotations

import functools
import http.server
import io
import itertools
import json
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import Session, col, select

from anchor.store import make_engine
from api.service.models import AuditEvent, Evidence, WatchSlot
from tests.api.conftest import capture_available, start_server
from tests.api.server import Server, wait_for_status

EVERY_SECONDS = 3
RUN_TIMEOUT = 90.0

pytestmark = pytest.mark.skipif(capture_available() is not None, reason=f"web capture: {capture_available()}")


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@dataclass
class Site:
    """A folder on loopback; ``page(price)`` writes the item page, ``remove()`` deletes it (404)."""

    folder: Path
    url: str

    def page(self, price: int) -> None:
        html = (f"<!doctype html><html><head><title>Item 42</title></head><body><h1>Item 42</h1>"
                f"<p>Seller <b id='seller'>Shop 7</b></p><p class='price'>{price}.00 CNY</p></body></html>")
        (self.folder / "item.html").write_text(html, encoding="utf-8")

    def remove(self) -> None:
        (self.folder / "item.html").unlink()


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    folder = tmp_path / "site"
    folder.mkdir()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(folder)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield Site(folder, f"http://127.0.0.1:{httpd.server_address[1]}/item.html")
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def server(anvil: Path, tmp_path: Path) -> Iterator[Server]:
    yield from start_server(tmp_path, "sqlite", TIEZHENG_WATCH_MIN_SECONDS="1")


def _runs(client: httpx.Client, watch_id: str) -> list[dict[str, Any]]:
    """The watch's slots that ran to an end (done or failed), oldest first."""
    slots = client.get(f"/v1/watches/{watch_id}").json()["slots"]
    return [s for s in reversed(slots) if s["state"] in ("done", "failed")]


def _run_after(client: httpx.Client, watch_id: str, moment: datetime) -> dict[str, Any]:
    """The first finished run whose slot is after ``moment``: it saw the site as it was then."""
    deadline = time.monotonic() + RUN_TIMEOUT
    while time.monotonic() < deadline:
        for run in _runs(client, watch_id):
            if datetime.fromisoformat(run["slot_time"]) > moment:
                return run
        time.sleep(0.3)
    raise AssertionError(f"no run after {moment} in {RUN_TIMEOUT} s: {client.get(f'/v1/watches/{watch_id}').text}")


def _between_runs(client: httpx.Client, watch_id: str, change: Callable[[], None]) -> datetime:
    """Change the site while no run is in flight: pause, let the running capture finish, change, resume.

    Returns the moment of the change: every run with a later slot saw the changed site, every earlier
    one the site before."""
    assert client.post(f"/v1/watches/{watch_id}/pause").status_code == 200
    deadline = time.monotonic() + RUN_TIMEOUT
    while any(s["state"] == "queued" for s in client.get(f"/v1/watches/{watch_id}").json()["slots"]):
        assert time.monotonic() < deadline, "a run did not finish"
        time.sleep(0.2)
    change()
    moment = datetime.now(UTC)
    assert client.post(f"/v1/watches/{watch_id}/resume").status_code == 200
    return moment


def _package(client: httpx.Client, evidence: str) -> dict[str, Any]:
    """The run's manifest, its source.html and its change record (None for a watch's first run)."""
    reply = client.get(f"/v1/evidence/{evidence}/package")
    assert reply.status_code == 200, reply.text
    with zipfile.ZipFile(io.BytesIO(reply.content)) as archive:
        names = set(archive.namelist())
        return {"manifest": json.loads(archive.read("evidence/manifest.json")),
                "source": archive.read("evidence/source.html").decode("utf-8", "replace"),
                "change": json.loads(archive.read("evidence/change.json")) if "evidence/change.json" in names
                else None}


def test_a_watch_follows_a_page_through_change_removal_and_reappearance(server: Server, site: Site) -> None:
    site.page(10)
    with server.client(server.new_tenant()["api_key"]) as client:
        matter = client.post("/v1/matters", json={"title": "Shop 7, item 42"}).json()["id"]
        made = client.post("/v1/watches", json={"url": site.url, "every": f"{EVERY_SECONDS}s", "matter": matter,
                                                "subject": "Shop 7", "fields": {"price": ".price"}})
        assert made.status_code == 201, made.text
        watch_id = made.json()["id"]

        seen = {"first": _run_after(client, watch_id, datetime.now(UTC) - timedelta(minutes=1))}
        seen["unchanged"] = _run_after(client, watch_id, datetime.fromisoformat(seen["first"]["slot_time"]))
        seen["changed"] = _run_after(client, watch_id, _between_runs(client, watch_id, lambda: site.page(12)))
        seen["removed"] = _run_after(client, watch_id, _between_runs(client, watch_id, site.remove))
        seen["reappeared"] = _run_after(client, watch_id, _between_runs(client, watch_id, lambda: site.page(12)))
        assert client.post(f"/v1/watches/{watch_id}/pause").status_code == 200

        assert all(run["state"] == "done" for run in seen.values()), seen
        packages = {name: _package(client, run["evidence_id"]) for name, run in seen.items()}
        manifests = {name: p["manifest"] for name, p in packages.items()}
        assert [manifests[n]["target"]["http_status"] for n in seen] == [200, 200, 200, 404, 200]
        assert ["10.00" in packages[n]["source"] for n in seen] == [True, True, False, False, False]
        assert all(m["matter"] == matter and m["subject"] == "Shop 7" and m["watch"] == watch_id
                   for m in manifests.values())
        # Change detection: each run after the first carries evidence/change.json, signed in its manifest,
        # comparing it with the run its `previous` names.
        assert packages["first"]["change"] is None
        assert {n: packages[n]["change"]["classification"] for n in list(seen)[1:]} == {
            "unchanged": "unchanged", "changed": "changed", "removed": "removed", "reappeared": "reappeared"}
        price = packages["changed"]["change"]["key_fields"][0]
        assert price["name"] == "price" and price["changed"] and "12.00" in price["after"]
        for name in list(seen)[1:]:
            assert packages[name]["change"]["previous"]["fingerprint"] == manifests[name]["previous"]
            assert "evidence/change.json" in {a["path"] for a in manifests[name]["artifacts"]}

        # One chain: each run's `previous` is the fingerprint of the run before it, the first has none.
        runs = [r for r in _runs(client, watch_id) if r["state"] == "done"]
        chain = [_package(client, r["evidence_id"])["manifest"].get("previous") for r in runs]
        assert chain[0] is None and chain[1:] == [r["fingerprint"] for r in runs[:-1]]

        # Each run is sealed and verifies on its own (P2 holds change.json to the hash its step logged).
        last = wait_for_status(client, seen["reappeared"]["evidence_id"], {"sealed"})
        report = httpx.post(f"{server.url}/v1/verify", timeout=60, files={"file": (
            "run.wacz", client.get(f"/v1/evidence/{last['id']}/package").content, "application/zip")}).json()
        assert report["verified"], [c for c in report["checks"] if c["status"] == "fail"]
        filed = set(client.get(f"/v1/matters/{matter}").json()["evidence"])
        assert {r["evidence_id"] for r in runs} <= filed


def _wait_dead(server: Server, timeout: float = 60.0) -> int:
    assert server.process is not None
    code = server.process.wait(timeout)
    server.process = None
    return code


def _check_slots(server: Server, watch_id: str) -> list[WatchSlot]:
    """Every slot of the grid once, each run captured once, every run's package chained to the one before."""
    engine = make_engine(f"sqlite:///{server.data_dir / 'tiezheng.db'}")
    try:
        with Session(engine) as session:
            slots = list(session.exec(select(WatchSlot).where(WatchSlot.watch_id == watch_id)
                                      .order_by(col(WatchSlot.slot_time))).all())
            refs = [s.evidence_ref for s in slots if s.evidence_ref]
            captured = session.exec(select(AuditEvent.target).where(AuditEvent.action == "evidence.captured")).all()
            rows = {e.id: e for e in session.exec(select(Evidence).where(col(Evidence.id).in_(refs))).all()}
    finally:
        engine.dispose()
    times = [s.slot_time for s in slots]
    assert all(b - a == timedelta(seconds=EVERY_SECONDS) for a, b in itertools.pairwise(times)), times
    assert len(refs) == len(set(refs))
    for ref in refs:
        assert list(captured).count(ref) <= 1, f"run {ref} was captured twice"
    for slot in slots:
        if slot.state == "done":
            assert rows[slot.evidence_ref or ""].fingerprint == slot.fingerprint
        assert slot.state != "queued" or slot is slots[-1], "a run was left queued and never finished"
        if slot.state == "missed":
            assert slot.reason
    return slots


def test_scheduler_killed_mid_run_neither_runs_a_slot_twice_nor_loses_one(server: Server, site: Site) -> None:
    site.page(10)
    key = server.new_tenant()["api_key"]
    server.stop()
    # 1. Killed right after the scheduler committed a run (slot row, capture row and queue message), before
    #    the run was handed to a worker: the restarted service must run it, once.
    server.extra_env["TIEZHENG_FAILPOINT"] = "schedule:committed"
    server.start()
    with server.client(key) as client:
        watch_id = client.post("/v1/watches", json={"url": site.url, "every": f"{EVERY_SECONDS}s"}).json()["id"]
    assert _wait_dead(server) == -9
    time.sleep(2 * EVERY_SECONDS)  # slots pass while it is down
    del server.extra_env["TIEZHENG_FAILPOINT"]
    server.start()
    with server.client(key) as client:
        first = _run_after(client, watch_id, datetime.now(UTC) - timedelta(minutes=5))
        assert first["state"] == "done"
        # 2. Killed while a run is capturing.
        deadline = time.monotonic() + RUN_TIMEOUT
        while not any(s["state"] == "queued" for s in client.get(f"/v1/watches/{watch_id}").json()["slots"]):
            assert time.monotonic() < deadline
            time.sleep(0.1)
    server.kill()
    time.sleep(EVERY_SECONDS)
    server.start()
    with server.client(key) as client:
        _run_after(client, watch_id, datetime.now(UTC))
        client.post(f"/v1/watches/{watch_id}/pause")
        time.sleep(1)
    server.stop()
    slots = _check_slots(server, watch_id)
    states = [s.state for s in slots]
    assert states[0] == "done", "the run committed just before the crash was lost"
    assert "missed" in states and states.count("done") >= 3
    assert any(s.reason == "the scheduler was not running at this time" for s in slots)
