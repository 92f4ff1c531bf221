"""An event log at scale: two API processes ingest in parallel into PostgreSQL, one sequencer process
(`tiezheng worker log`) integrates, and it is SIGKILLed mid-integration and restarted.

The processes share only PostgreSQL and an S3 blob store (s3rver): each has its own data dir. The
sequencer kills itself (a failpoint) after signing its third checkpoint and before committing it,
while both clients keep appending; a restarted sequencer takes over. Every acknowledged event must
be in the log exactly once at the index its receipt gave, and every published checkpoint must be
the root of the acknowledged leaves up to its size, signed by the sequencer's key, with tiles that
an API process which wrote none of them serves from the blob store.
"""

from __future__ import annotations

import base64
import itertools
import json
import secrets
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.server import BIN, Server, drop_postgres_database, postgres_database, postgres_where
from tests.s3server import BUCKET, S3_ENV, running_s3rver, s3rver_missing
from verifier import merkle
from verifier.signed_note import verify_note
from verifier.tlog_checkpoint import parse_checkpoint
from verifier.tlog_tiles import TILE_WIDTH, tile_path

BATCH = 50
#: Requests per client, a pause apart: the ingest outlasts the kill and the restart, and the
#: sequencer (whose tiles go to s3rver, one object a tile) keeps up on a loaded machine.
REQUESTS = 40
PAUSE_SECONDS = 0.1
#: The sequencer dies the second time it has signed a checkpoint, before that commit (the first is
#: published before the clients start, so the second integration runs while they append).
FAILPOINT = "log:signed@2"
DEADLINE = 60.0


@pytest.fixture
def postgres() -> Iterator[str]:
    url = postgres_database()
    if url is None:
        pytest.skip(f"PostgreSQL is not reachable at {postgres_where()}")
    yield url
    drop_postgres_database(url)


@pytest.fixture
def s3_endpoint(tmp_path: Path) -> Iterator[str]:
    if (missing := s3rver_missing()) is not None:
        pytest.skip(f"the S3 blob store {missing}")
    with running_s3rver(tmp_path / "s3") as url:
        yield url


def _events(client: int, start: int) -> bytes:
    return b"".join(json.dumps({
        "event_time": f"2026-12-01T12:{i // 60 % 60:02d}:{i % 60:02d}Z", "type": "like", "actor": f"user{i % 9}",
        "device_id": f"device-{client}", "ip": f"198.51.100.{i % 6}", "session": f"s{client}",
        "payload": {"client": client, "n": i}}).encode() + b"\n" for i in range(start, start + BATCH))


def _wait(what: str, probe: Callable[[], object], timeout: float = DEADLINE) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := probe():
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


class Ingest(threading.Thread):
    """One client appending ``REQUESTS`` batches to one API process; keeps every receipt."""

    def __init__(self, number: int, server: Server, key: str) -> None:
        super().__init__(name=f"ingest-{number}", daemon=True)
        self.number, self.server, self.key = number, server, key
        self.receipts: list[dict[str, Any]] = []
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with self.server.client(self.key) as client:
                for _ in range(REQUESTS):
                    if self.stop.wait(PAUSE_SECONDS):
                        return
                    reply = client.post("/v1/logs/likes/events", content=_events(self.number, len(self.receipts)),
                                        headers={"Content-Type": "application/x-ndjson"})
                    assert reply.status_code == 201, reply.text
                    self.receipts += reply.json()["receipts"]
        except BaseException as exc:  # reported by the test's main thread
            self.error = exc


def _checkpoint(client: httpx.Client) -> int:
    reply = client.get("/v1/logs/likes/checkpoint")
    return int(reply.text.split("\n")[1]) if reply.status_code == 200 else 0


def test_two_apis_ingest_while_the_sequencer_is_killed_mid_integration_and_nothing_is_lost_or_doubled(
        tmp_path: Path, postgres: str, s3_endpoint: str) -> None:
    from sqlalchemy import create_engine, text

    shared = {**S3_ENV, "TIEZHENG_DATABASE_URL": postgres, "TIEZHENG_BLOB_URL": f"s3://{BUCKET}/logs",
              "TIEZHENG_S3_ENDPOINT_URL": s3_endpoint, "TIEZHENG_API_KEY_SECRET": secrets.token_hex(32),
              "TIEZHENG_RATE_PER_SECOND": "1000", "TIEZHENG_RATE_BURST": "1000",
              "TIEZHENG_LOG_CHECKPOINT_EVENTS": "200", "TIEZHENG_LOG_CHECKPOINT_SECONDS": "0.3"}
    apis = [Server(tmp_path / f"api-{n}", extra_env=shared, serve_args=("--no-seal",),
                   ready_path="/healthz") for n in (1, 2)]
    sequencers: list[subprocess.Popen[bytes]] = []

    def sequencer(extra: dict[str, str]) -> subprocess.Popen[bytes]:
        env = {**apis[0].env, **extra, "TIEZHENG_DATA_DIR": str(tmp_path / "sequencer")}
        with (tmp_path / "sequencer.log").open("ab") as log:
            sequencers.append(subprocess.Popen([str(BIN / "tiezheng"), "worker", "log"], env=env, stdout=log,
                                               stderr=subprocess.STDOUT))
        return sequencers[-1]

    clients: list[Ingest] = []
    try:
        apis[0].start()  # it migrates the database; then the rest start side by side
        doomed = sequencer({"TIEZHENG_FAILPOINT": FAILPOINT})
        with ThreadPoolExecutor(2) as starting:
            second_up = starting.submit(apis[1].start)
            key = starting.submit(apis[0].new_tenant, "platform").result()["api_key"]
            second_up.result()
        with apis[0].client(key) as first:
            assert first.post("/v1/logs", json={"name": "likes"}).status_code == 201
            seed = first.post("/v1/logs/likes/events", content=_events(0, 0)).json()["receipts"]
            _wait("the sequencer's first checkpoint", lambda: _checkpoint(first) == BATCH)
        clients = [Ingest(n, api, key) for n, api in enumerate(apis, 1)]
        for client in clients:
            client.start()
        assert _wait("the sequencer's failpoint", lambda: doomed.poll() is not None) is True
        assert doomed.returncode == -signal.SIGKILL, (tmp_path / "sequencer.log").read_text()[-3000:]
        engine = create_engine(postgres)
        with engine.connect() as connection:
            # The second checkpoint was signed but never published.
            assert connection.execute(text("select size from log_checkpoint")).scalars().all() == [BATCH]
            killed_at = connection.execute(text("select size from event_log")).scalar_one()
            assert killed_at == BATCH
        restarted = sequencer({})  # the same host: the dead holder's lease is taken over at once
        with apis[1].client(key) as second:
            _wait("a checkpoint by the restarted sequencer", lambda: _checkpoint(second) > killed_at)
            for client in clients:
                client.join(DEADLINE)
                assert client.error is None, client.error
                assert len(client.receipts) == REQUESTS * BATCH
            acknowledged = sorted(seed + [r for c in clients for r in c.receipts], key=lambda r: r["leaf_index"])
            total = len(acknowledged)
            _wait("every acknowledged event integrated", lambda: _checkpoint(second) == total)
            served = second.get("/v1/logs/likes/checkpoint").content
            tiles = [second.get(f"/v1/logs/likes/{tile_path(0, index, min(TILE_WIDTH, total - index * TILE_WIDTH))}")
                     for index in range((total + TILE_WIDTH - 1) // TILE_WIDTH)]
        restarted.send_signal(signal.SIGTERM)
        assert restarted.wait(30) == 0

        # No acknowledged event lost or doubled: the receipts' indexes are exactly 0..total-1.
        assert [r["leaf_index"] for r in acknowledged] == list(range(total))
        leaves = [bytes.fromhex(r["leaf"]) for r in acknowledged]
        with engine.connect() as connection:
            stored = connection.execute(text("select leaf_index, leaf from log_event order by leaf_index")).all()
            checkpoints = connection.execute(text("select size, root from log_checkpoint order by size")).all()
            assert connection.execute(text("select size, next_index from event_log")).one() == (total, total)
        engine.dispose()
        assert [(i, bytes.fromhex(leaf)) for i, leaf in stored] == list(enumerate(leaves))
        # The tree: every checkpoint is the root of the acknowledged leaves up to its size, so each is
        # consistent with the one before; the last one holds them all.
        sizes = [size for size, _ in checkpoints]
        assert sizes == sorted(set(sizes)) and sizes[0] == BATCH and sizes[-1] == total and len(sizes) >= 2
        for size, root in checkpoints:
            assert bytes.fromhex(root) == merkle.root(leaves[:size]), size
        for older, newer in itertools.pairwise(sizes):
            proof = merkle.consistency_proof(leaves[:newer], older)
            merkle.verify_consistency(older, newer, proof, merkle.root(leaves[:older]), merkle.root(leaves[:newer]))
        # What API process 2 serves (it wrote none of it): the signed checkpoint and the level-0 tiles.
        checkpoint, note = parse_checkpoint(served)
        assert checkpoint.size == total and checkpoint.root == merkle.root(leaves)
        from api.service.runtime import operator_for
        from api.service.settings import Settings

        operator = operator_for(Settings(data_dir=tmp_path / "sequencer"))
        verify_note(note, checkpoint.origin, operator.public_key_raw)
        assert all(tile.status_code == 200 for tile in tiles)
        assert b"".join(tile.content for tile in tiles) == b"".join(leaves)
        assert base64.b64encode(checkpoint.root).decode() in served.decode()
    finally:
        for client in clients:
            client.stop.set()
        for process in sequencers:
            if process.poll() is None:
                process.kill()
                process.wait()
        for api in apis:
            api.stop()
