"""Event logs end to end: ingest -> checkpoint -> seal (real devnet and TSA) -> export -> verify.

Each way of lying about a log fails its own check, with the export re-signed by the operator so
that only the log checks can catch it: a tampered or reordered event (L1), a dropped event or a
forked checkpoint (L2), a checkpoint signed by another key (L3), altered aggregates (L4). A reader
written here from the C2SP tlog-tiles text alone rebuilds the checkpoint's root from the tiles.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlmodel import Session, select

from api.service import log_pipeline
from api.service.event_log import (
    InconsistentCheckpoint,
    LogCheckpoint,
    LogError,
    LogTile,
    get_log,
    parse_filter,
    plan_export,
    read_tile,
    sealed_proof_files,
)
from api.service.runtime import blob_store, local_trust, operator_for
from api.service.settings import Settings
from evidence.log_export import LogExportInput, build_log_export
from verifier import merkle
from verifier.event_log import aggregates_document, commit_event, disclose
from verifier.package import Requester
from verifier.signed_note import format_note, signature_line
from verifier.tlog_checkpoint import Checkpoint
from verifier.verdict import Status, Verdict
from verifier.verify import verify_package

FIRST, SECOND = 300, 100
#: Events 0..299 happen in 10:00:00-10:04:59, so this filter's events are all in the first checkpoint.
FIRST_WINDOW = "type=like AND event_time in [2026-12-01T10:00:00Z,2026-12-01T10:05:00Z)"
SHOWN = ["event_time", "type", "device_id"]


def _events(start: int, count: int) -> str:
    lines = []
    for i in range(start, start + count):
        minute, second = divmod(i, 60)
        lines.append(json.dumps({
            "event_time": f"2026-12-01T10:{minute:02d}:{second:02d}Z", "type": "like" if i % 4 else "view",
            "actor": f"user{i % 11}", "device_id": f"device-{i % 3}", "ip": f"203.0.113.{i % 5}",
            "session": f"s{i % 7}", "payload": {"post": 42, "pad": "x" * 100}}))
    return "\n".join(lines) + "\n"


@dataclasses.dataclass
class SealedLog:
    settings: Settings
    engine: Any
    receipts: list[Any]


@pytest.fixture(scope="module")
def sealed_log(tmp_path_factory: pytest.TempPathFactory, anvil: Path) -> SealedLog:
    from api.service.pipeline import seal_pending

    root = tmp_path_factory.mktemp("event-log")
    settings = Settings(data_dir=root / "data")
    engine = log_pipeline.log_engine(settings)
    (root / "a.ndjson").write_text(_events(0, FIRST))
    (root / "b.ndjson").write_text(_events(FIRST, SECOND))
    receipts = log_pipeline.append_file(engine, "likes", root / "a.ndjson", batch=128)
    assert log_pipeline.sequence(settings, engine, "likes") is not None
    receipts += log_pipeline.append_file(engine, "likes", root / "b.ndjson")
    assert log_pipeline.sequence(settings, engine, "likes") is not None
    outcome = seal_pending(settings, on_step=lambda _: None)
    assert outcome.left == 0 and len(outcome.items) == 2
    return SealedLog(settings, engine, receipts)


def _verify(settings: Settings, package: Path) -> dict[str, Any]:
    report = verify_package(package, local_trust(settings))
    statuses = {r.id: r.status for r in report.checks}
    return {"verdict": report.verdict, "statuses": statuses, "reasons": {r.id: r.reason for r in report.checks}}


def test_receipts_are_dense_and_the_export_verifies_with_consistency_to_the_anchored_checkpoint(
        sealed_log: SealedLog) -> None:
    assert [r.leaf_index for r in sealed_log.receipts] == list(range(FIRST + SECOND))
    built = log_pipeline.export(sealed_log.settings, sealed_log.engine, "likes", FIRST_WINDOW, SHOWN, aggregates=True)
    result = _verify(sealed_log.settings, built.path)
    assert result["verdict"] is Verdict.VERIFIED_OFFLINE, result
    assert all(result["statuses"][i] is Status.PASS for i in ("H1", "H2", "H3", "H4", "L1", "L2", "L3", "L4"))
    assert f"size {FIRST} is extended by the anchored checkpoint of size {FIRST + SECOND}" in result["reasons"]["L2"]
    assert "225 disclosed events" in result["reasons"]["L1"]  # every 4th event is a view


def test_withheld_fields_are_only_salted_hashes(sealed_log: SealedLog) -> None:
    import zipfile

    built = log_pipeline.export(sealed_log.settings, sealed_log.engine, "likes", FIRST_WINDOW, SHOWN)
    with zipfile.ZipFile(built.path) as archive:
        events = archive.read("evidence/log/events.jsonl").decode()
    assert "203.0.113." not in events and "user" not in events
    record = json.loads(events.splitlines()[0])
    assert set(record["disclosed"]) == set(SHOWN)
    assert set(record["withheld"]) == {"actor", "ip", "session", "payload"}


# -- lies, each re-signed by the operator so that only a log check can catch it ----------------------

def _plan(sealed_log: SealedLog) -> tuple[Any, LogExportInput, list[tuple[int, dict[str, Any], bytes]]]:
    """The honest export input, and every event of the log (index, event, salt)."""
    from api.service.event_log import LogEvent

    with Session(sealed_log.engine) as session:
        log = get_log(session, "local", "likes")
        ids = [c.evidence_id for c in session.exec(select(LogCheckpoint)).all()]
        plan = plan_export(session, log, parse_filter(FIRST_WINDOW), SHOWN,
                           anchored=log_pipeline.anchored_ids(sealed_log.engine, ids), with_aggregates=True)
        rows = session.exec(select(LogEvent).where(LogEvent.log_id == log.id)).all()
        everything = sorted((r.leaf_index, json.loads(r.body), bytes.fromhex(r.salt)) for r in rows)
        origin = log.origin
        proof_files = sealed_proof_files(session, blob_store(sealed_log.settings), plan.anchored)
    honest = LogExportInput(
        origin=origin, records=plan.records, checkpoint=plan.checkpoint.note.encode(),
        checkpoint_time=plan.checkpoint.published_at, anchored_checkpoint=plan.anchored.note.encode(),
        anchored_time=plan.anchored.published_at, consistency=plan.consistency,
        proof_files=proof_files, filter_text=FIRST_WINDOW, fields=SHOWN,
        aggregates=plan.aggregates)
    return plan, honest, everything


def _sign_checkpoint(settings: Settings, checkpoint: Checkpoint, sign: Callable[[bytes], bytes] | None = None,
                     public: bytes | None = None) -> bytes:
    operator = operator_for(settings)
    sign = sign or operator.signer.sign
    public = public or operator.public_key_raw
    return format_note(checkpoint.text, [signature_line(checkpoint.origin, public, sign(checkpoint.text.encode()))])


def _tree_export(everything: list[tuple[int, dict[str, Any], bytes]], size: int, chosen: range
                 ) -> tuple[bytes, list[dict[str, Any]]]:
    """The root of a tree over these events (re-indexed), and the records of ``chosen`` with proofs."""
    leaves = [merkle.leaf_hash(commit_event(event, salt)) for _, event, salt in everything[:size]]
    records = []
    for position, path in zip(chosen, merkle.inclusion_proofs(leaves, list(chosen)), strict=True):
        _, event, salt = everything[position]
        record = disclose(event, salt, position, SHOWN)
        record["inclusion"] = [h.hex() for h in path]
        records.append(record)
    return merkle.root(leaves), records


def _forge(sealed_log: SealedLog, honest: LogExportInput, **changes: Any) -> dict[str, Any]:
    forged = dataclasses.replace(honest, **changes)
    built = build_log_export(forged, packages_dir=sealed_log.settings.packages_dir / "forged",
                             operator=operator_for(sealed_log.settings), requester=Requester("local", "counsel"))
    result = _verify(sealed_log.settings, built.path)
    assert result["statuses"]["S1"] is Status.PASS and result["statuses"]["H1"] is Status.PASS, result
    assert result["verdict"] is Verdict.FAILED
    return result


def test_a_tampered_event_fails_l1(sealed_log: SealedLog) -> None:
    _, honest, _ = _plan(sealed_log)
    records = [json.loads(json.dumps(r)) for r in honest.records]
    records[3]["disclosed"]["device_id"]["value"] = "device-9"
    result = _forge(sealed_log, honest, records=records, aggregates=None)
    assert result["statuses"]["L1"] is Status.FAIL and result["statuses"]["L2"] is Status.PASS


def test_a_reordered_event_fails_l1(sealed_log: SealedLog) -> None:
    _, honest, _ = _plan(sealed_log)
    records = [json.loads(json.dumps(r)) for r in honest.records]
    records[0]["index"], records[1]["index"] = records[1]["index"], records[0]["index"]
    result = _forge(sealed_log, honest, records=records)
    assert result["statuses"]["L1"] is Status.FAIL


def test_a_dropped_event_fails_l2(sealed_log: SealedLog) -> None:
    plan, honest, everything = _plan(sealed_log)
    # The operator removes event 10 and rebuilds the tree: its own proofs hold, the anchor does not.
    rewritten = everything[:10] + everything[11:]
    root, records = _tree_export(rewritten, FIRST - 1, range(20, 30))
    cut = Checkpoint(json.loads(json.dumps(honest.origin)), FIRST - 1, root)
    full_leaves = [merkle.leaf_hash(commit_event(e, s)) for _, e, s in rewritten]
    result = _forge(sealed_log, honest, records=records, checkpoint=_sign_checkpoint(sealed_log.settings, cut),
                    consistency=merkle.consistency_proof(full_leaves, FIRST - 1), aggregates=None)
    assert result["statuses"]["L1"] is Status.PASS and result["statuses"]["L2"] is Status.FAIL
    assert plan.anchored.size == FIRST + SECOND


def test_a_forked_checkpoint_fails_l2(sealed_log: SealedLog) -> None:
    _, honest, everything = _plan(sealed_log)
    # Same size as the anchored checkpoint, another history: event 5 says something else.
    fork = list(everything)
    index, event, salt = fork[5]
    fork[5] = (index, {**event, "ip": "198.51.100.1"}, salt)
    root, records = _tree_export(fork, FIRST + SECOND, range(0, 10))
    forked = Checkpoint(honest.origin, FIRST + SECOND, root)
    result = _forge(sealed_log, honest, records=records, checkpoint=_sign_checkpoint(sealed_log.settings, forked),
                    consistency=[], aggregates=None)
    assert result["statuses"]["L1"] is Status.PASS and result["statuses"]["L2"] is Status.FAIL


def test_a_checkpoint_signed_by_another_key_fails_l3(sealed_log: SealedLog) -> None:
    plan, honest, _ = _plan(sealed_log)
    stranger = Ed25519PrivateKey.generate()
    public = stranger.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    checkpoint = Checkpoint(honest.origin, plan.checkpoint.size, bytes.fromhex(plan.checkpoint.root))
    note = _sign_checkpoint(sealed_log.settings, checkpoint, stranger.sign, public)
    result = _forge(sealed_log, honest, checkpoint=note)
    assert result["statuses"]["L3"] is Status.FAIL and result["statuses"]["L1"] is Status.PASS


def test_altered_aggregates_fail_l4(sealed_log: SealedLog) -> None:
    _, honest, _ = _plan(sealed_log)
    assert honest.aggregates is not None
    shown = [{k: v["value"] for k, v in r["disclosed"].items()} for r in honest.records]
    table = aggregates_document(shown, [(["device_id"], "hour")])
    table["tables"][0]["rows"][0]["events"] += 5
    result = _forge(sealed_log, honest, aggregates=table)
    assert result["statuses"]["L4"] is Status.FAIL and result["statuses"]["L1"] is Status.PASS


# -- the tiles, read as any tlog client would --------------------------------------------------------

def _spec_tile_path(kind: str, index: int, width: int) -> str:
    """tlog-tiles: three-digit path elements, all but the last prefixed with x; partial tiles end .p/W."""
    digits = f"{index:03d}"
    groups = [digits[max(0, i - 3):i] for i in range(len(digits), 0, -3)][::-1]
    groups = [g.rjust(3, "0") for g in groups]
    path = "/".join([f"x{g}" for g in groups[:-1]] + [groups[-1]])
    return f"tile/{kind}/{path}" + (f".p/{width}" if width < 256 else "")


def _mth(hashes: list[bytes]) -> bytes:
    """RFC 6962 §2.1 MTH over leaf hashes, by its recursive definition."""
    if len(hashes) == 1:
        return hashes[0]
    k = 1
    while k * 2 < len(hashes):
        k *= 2
    return hashlib.sha256(b"\x01" + _mth(hashes[:k]) + _mth(hashes[k:])).digest()


def test_an_independent_tile_reader_rebuilds_the_checkpoint_root(sealed_log: SealedLog) -> None:
    blobs = blob_store(sealed_log.settings)
    with Session(sealed_log.engine) as session:
        log = get_log(session, "local", "likes")
        checkpoint = session.exec(select(LogCheckpoint).where(LogCheckpoint.size == FIRST + SECOND)).one()
        origin, size_line, root_line = checkpoint.note.split("\n")[:3]
        size = int(size_line)
        leaves: list[bytes] = []
        for index in range((size + 255) // 256):
            width = min(256, size - index * 256)
            tile = read_tile(session, blobs, log, _spec_tile_path("0", index, width))
            leaves += [tile[i:i + 32] for i in range(0, len(tile), 32)]
            bundle = read_tile(session, blobs, log, _spec_tile_path("entries", index, width))
            at, entries = 0, []
            while at < len(bundle):
                length = int.from_bytes(bundle[at:at + 2], "big")
                entries.append(bundle[at + 2:at + 2 + length])
                at += 2 + length
            assert [hashlib.sha256(b"\x00" + e).digest() for e in entries] == leaves[index * 256:]
        level_one = read_tile(session, blobs, log, _spec_tile_path("1", 0, size // 256))
    assert origin == log.origin and len(leaves) == size
    assert level_one == _mth(leaves[:256])
    assert _mth(leaves) == base64.b64decode(root_line)
    with Session(sealed_log.engine) as session, pytest.raises(LogError):
        read_tile(session, blobs, get_log(session, "local", "likes"), _spec_tile_path("0", 9, 3))


def test_the_sequencer_refuses_a_tree_that_lost_the_last_checkpoint(sealed_log: SealedLog, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    engine = log_pipeline.log_engine(settings)
    (tmp_path / "a.ndjson").write_text(_events(0, 10))
    log_pipeline.append_file(engine, "other", tmp_path / "a.ndjson")
    assert log_pipeline.sequence(settings, engine, "other") is not None
    blobs = blob_store(settings)
    bogus = tmp_path / "bogus"
    bogus.write_bytes(b"\x07" * 32 * 10)
    with Session(engine) as session:  # someone rewrites the stored level-0 tile
        tile = session.exec(select(LogTile).where(LogTile.level == 0)).one()
        tile.address = blobs.put_file(bogus)
        session.add(tile)
        session.commit()
    log_pipeline.append_file(engine, "other", tmp_path / "a.ndjson")
    with pytest.raises(InconsistentCheckpoint):
        log_pipeline.sequence(settings, engine, "other")
    with Session(engine) as session:
        assert [c.size for c in session.exec(select(LogCheckpoint)).all()] == [10]


KILL_SCRIPT = """
import os, signal, sys
from pathlib import Path
from api.service import log_pipeline
from api.service.settings import Settings

settings = Settings(data_dir=Path(sys.argv[1]))
engine = log_pipeline.log_engine(settings)
sequencer = log_pipeline.sequencer_for(settings, engine)
def on_step(name):
    if name == sys.argv[2]:
        os.kill(os.getpid(), signal.SIGKILL)
sequencer.on_step = on_step
sequencer.run_once(1, force=True)
"""


@pytest.mark.parametrize("step", ["tiles", "signed"])
def test_a_sigkilled_sequencer_loses_no_acknowledged_event_and_duplicates_none(tmp_path: Path, step: str) -> None:
    import subprocess
    import sys

    settings = Settings(data_dir=tmp_path / "data")
    engine = log_pipeline.log_engine(settings)
    (tmp_path / "a.ndjson").write_text(_events(0, 300))
    (tmp_path / "b.ndjson").write_text(_events(300, 200))
    acknowledged = log_pipeline.append_file(engine, "likes", tmp_path / "a.ndjson")
    assert log_pipeline.sequence(settings, engine, "likes") is not None  # a first checkpoint, size 300
    acknowledged += log_pipeline.append_file(engine, "likes", tmp_path / "b.ndjson")
    killed = subprocess.run([sys.executable, "-c", KILL_SCRIPT, str(settings.data_dir), step], timeout=120)
    assert killed.returncode == -9
    with Session(engine) as session:
        assert [c.size for c in session.exec(select(LogCheckpoint)).all()] == [300]  # nothing half-published
    # The restart takes over the dead holder's lease at once and redoes the integration.
    checkpoint = log_pipeline.sequence(settings, engine, "likes")
    assert checkpoint is not None and checkpoint.size == len(acknowledged) == 500
    everything = [(r.leaf_index, bytes.fromhex(r.leaf)) for r in acknowledged]
    assert [i for i, _ in everything] == list(range(500))
    assert checkpoint.root == merkle.root([leaf for _, leaf in everything]).hex()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_concurrent_appends_get_dense_indexes(tmp_path: Path, backend: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from api.service.event_log import append
    from tests.api.server import drop_postgres_database, postgres_database, postgres_where

    url = postgres_database() if backend == "postgresql" else None
    if backend == "postgresql" and url is None:
        pytest.skip(f"PostgreSQL is not reachable at {postgres_where()}")
    engine = log_pipeline.log_engine(Settings(data_dir=tmp_path / "data", database_url=url))
    try:
        log_id = int(log_pipeline.ensure_log(engine, "busy").id or 0)
        lines = _events(0, 20).encode().splitlines()

        def client(_: int) -> list[int]:
            with Session(engine) as session:
                return [r.leaf_index for _ in range(10) for r in append(session, log_id, lines)]

        with ThreadPoolExecutor(4) as pool:
            taken = [i for batch in pool.map(client, range(4)) for i in batch]
        assert sorted(taken) == list(range(800))
    finally:
        engine.dispose()
        if url is not None:
            drop_postgres_database(url)


@pytest.mark.parametrize("line", [b'{"event_time": "2026-12-01T10:00:00Z", "x": NaN}', b'{"\\ud800": 1}',
                                  b'"just a string"', b"[" * 5000 + b"]" * 5000, b"\xff\xfe{}",
                                  b'{"event_time": "yesterday"}'])
def test_malformed_events_are_refused_and_nothing_is_committed(tmp_path: Path, line: bytes) -> None:
    from api.service.event_log import EventLog, append, create_log

    engine = log_pipeline.log_engine(Settings(data_dir=tmp_path / "data"))
    with Session(engine) as session:  # no required fields: only the malformed line is refused
        log_id = int(create_log(session, "local", "strict", required=()).id or 0)
    with Session(engine) as session:
        assert len(append(session, log_id, [b"{}"])) == 1
    with Session(engine) as session, pytest.raises(LogError) as refused:
        append(session, log_id, [b"{}", line])
    assert refused.value.status in (413, 422)
    with Session(engine) as session:
        log = session.get(EventLog, log_id)
        assert log is not None and log.next_index == 1


def test_a_verified_export_says_what_a_log_proves(sealed_log: SealedLog) -> None:
    built = log_pipeline.export(sealed_log.settings, sealed_log.engine, "likes", FIRST_WINDOW, SHOWN)
    report = verify_package(built.path, local_trust(sealed_log.settings))
    assert report.verified and "were in the operator's log" in report.proves[0]
    assert "已在运营方的日志中" in report.proves_zh[0] and len(report.proves) == len(report.proves_zh) == 2
