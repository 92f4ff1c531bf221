"""The event-log API on a running service, SQLite and PostgreSQL: append, the sequencer's checkpoint,
sealing, tiles, and an export that `tiezheng-verify` accepts with the service's published trust."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import start_server
from tests.api.server import Server
from verifier.trust import parse_trust
from verifier.verdict import Status, Verdict
from verifier.verify import verify_package

EVENTS = 300


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def log_server(request: pytest.FixtureRequest, anvil: Path, tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[Server]:
    yield from start_server(tmp_path_factory.mktemp(f"logs-{request.param}"), request.param,
                            TIEZHENG_LOG_CHECKPOINT_SECONDS="0.3")


def _ndjson(start: int, count: int) -> bytes:
    return b"".join(json.dumps({
        "event_time": f"2026-12-01T11:{i // 60 % 60:02d}:{i % 60:02d}+00:00", "type": "like",
        "actor": f"user{i % 9}", "device_id": f"device-{i % 4}", "ip": f"198.51.100.{i % 6}", "session": "s",
        "payload": {"n": i}}).encode() + b"\n" for i in range(start, start + count))


def _wait(what: str, probe: Callable[[], object], timeout: float = 90) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def test_append_checkpoint_seal_export_verify(log_server: Server, tmp_path: Path) -> None:
    tenant = log_server.new_tenant()
    client = log_server.client(tenant["api_key"])
    first = client.post("/v1/logs/likes/events", content=_ndjson(0, 200),
                        headers={"Content-Type": "application/x-ndjson"})
    assert first.status_code == 201, first.text
    second = client.post("/v1/logs/likes/events", content=_ndjson(200, EVENTS - 200))
    receipts = first.json()["receipts"] + second.json()["receipts"]
    assert [r["seq"] for r in receipts] == list(range(EVENTS))

    def checkpoint() -> str | None:
        reply = client.get("/v1/logs/likes/checkpoint")
        return reply.text if reply.status_code == 200 and reply.text.split("\n")[1] == str(EVENTS) else None

    note = str(_wait("a checkpoint of every event", checkpoint))
    root = base64.b64decode(note.split("\n")[2])
    # The last level-0 tile is partial: the first 256 leaves are full tile 000.
    full = client.get("/v1/logs/likes/tile/0/000")
    partial = client.get(f"/v1/logs/likes/tile/0/001.p/{EVENTS - 256}")
    assert full.status_code == partial.status_code == 200
    assert full.content[:32] == hashlib.sha256(b"\x00" + _first_entry(client)).digest()
    assert len(partial.content) == 32 * (EVENTS - 256) and root

    def exported() -> httpx.Response | None:
        reply = client.post("/v1/logs/likes/exports", json={
            "filter": "event_time in [2026-12-01T11:00:00Z,2026-12-01T11:02:00Z)",
            "fields": ["event_time", "device_id", "ip"], "aggregates": True})
        return reply if reply.status_code == 200 else None

    reply = _wait("an anchored checkpoint to export against", exported)
    assert isinstance(reply, httpx.Response)
    package = tmp_path / "export.wacz"
    package.write_bytes(reply.content)
    trust = parse_trust(httpx.get(f"{log_server.url}/.well-known/tiezheng/trust.toml").text)
    report = verify_package(package, trust)
    statuses = {r.id: r.status for r in report.checks}
    assert report.verdict is Verdict.VERIFIED_OFFLINE, [(r.id, r.status, r.reason) for r in report.checks]
    assert [statuses[i] for i in ("L1", "L2", "L3", "L4")] == [Status.PASS] * 4

    stranger = log_server.client(log_server.new_tenant()["api_key"])
    assert stranger.get("/v1/logs/likes/checkpoint").status_code == 404
    assert client.post("/v1/logs/likes/events", content=b'{"type": "like"}\n').status_code == 422
    # A log of its own schema: only the fields it declares are required.
    created = client.post("/v1/logs", json={"name": "orders", "required": ["event_time", "order_id"]})
    assert created.status_code == 201 and created.json()["origin"] == f"tiezheng/{tenant['tenant']}/orders"
    assert client.post("/v1/logs", json={"name": "orders"}).status_code == 409
    order = b'{"event_time": "2026-12-01T12:00:00Z", "order_id": 7, "extra": true}\n'
    assert client.post("/v1/logs/orders/events", content=order).status_code == 201
    assert client.post("/v1/logs/orders/events", content=b'{"order_id": 8}\n').status_code == 422


def _first_entry(client: httpx.Client) -> bytes:
    bundle = client.get("/v1/logs/likes/tile/entries/000").content
    length = int.from_bytes(bundle[:2], "big")
    return bundle[2:2 + length]


def test_checkpoints_are_sealed_as_objects_without_a_package_file(log_server: Server) -> None:
    """An export on any host copies the anchored checkpoint's proofs from the blob store."""
    from sqlalchemy import create_engine, text

    url = log_server.database_url or f"sqlite:///{log_server.data_dir / 'tiezheng.db'}"
    engine = create_engine(url)
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT i.package_path, p.address FROM seal_item i JOIN seal_item_proof p "
                                       "ON p.evidence_id = i.evidence_id WHERE i.evidence_id LIKE 'logcp-%'")).all()
    engine.dispose()
    assert rows and all(path == "" and address for path, address in rows)
