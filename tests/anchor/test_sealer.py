"""The sealing loop end to end on real servers: the dev TSA over HTTP and anvil.

Upload -> seal -> tiezheng-verify passes H1-H5, T1 and T2; openssl agrees with the token; the
transaction input read back over plain JSON-RPC carries the root. Then the faults: a TSA or RPC that
is down, a token for another digest or from an untrusted TSA, and SIGKILLs at every transition.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography import x509
from sqlmodel import Session, select

from anchor.devnet import DEV_OPERATOR_KEY, DEVNET_CHAIN_ID, Devnet
from anchor.sealer import ChainEndpoint, Sealer, SealerConfig, TSAEndpoint
from anchor.store import BatchState, ItemState, SealBatch, SealItem, make_engine, sqlite_url
from anchor.tsa_server import DevTSA, TSAServer
from tests.anchor.conftest import rpc
from tests.api.server import drop_postgres_database, postgres_database, postgres_where
from tests.factory import Workspace
from verifier.chain_source import RpcChainSource
from verifier.trust import load_trust
from verifier.verdict import Status, Verdict
from verifier.verify import verify_package

CLOSED_PORT_URL = "http://127.0.0.1:9/"


@pytest.fixture()
def served_tsa(workspace: Workspace) -> Iterator[TSAServer]:
    with workspace.tsa.serve() as server:
        yield server


def endpoint(tsa: DevTSA, url: str) -> TSAEndpoint:
    return TSAEndpoint(name="dev TSA", url=url, roots=tuple(x509.load_pem_x509_certificates(tsa.ca_certificate_pem())),
                       chain_pem=tsa.chain_pem())


def make_sealer(workspace: Workspace, tsa_url: str, rpc_url: str, *, database: str | None = None,
                **config: object) -> Sealer:
    settings = SealerConfig(tsas=(endpoint(workspace.tsa, tsa_url),),
                            chain=ChainEndpoint(rpc_url=rpc_url, chain_id=DEVNET_CHAIN_ID,
                                                private_key=DEV_OPERATOR_KEY),
                            tsa_attempts=1, anchor_timeout=5, **config)  # type: ignore[arg-type]
    return Sealer(make_engine(database or sqlite_url(workspace.root / "tiezheng.db")), settings)


def accept(sealer: Sealer, workspace: Workspace, count: int) -> list[Path]:
    paths = []
    for i in range(count):
        built = workspace.upload([(f"exhibit-{i}.txt", f"evidence {i}\n".encode())])
        sealer.accept(built.evidence_id, built.fingerprint, built.path)
        paths.append(built.path)
    return paths


def items(sealer: Sealer) -> list[SealItem]:
    with Session(sealer.engine) as session:
        return list(session.exec(select(SealItem)).all())


def batches(sealer: Sealer) -> list[SealBatch]:
    with Session(sealer.engine) as session:
        return list(session.exec(select(SealBatch)).all())


def test_upload_seal_verify_end_to_end(workspace: Workspace, served_tsa: TSAServer, rpc_url: str,
                                       tmp_path: Path) -> None:
    sealer = make_sealer(workspace, served_tsa.url, rpc_url)
    packages = accept(sealer, workspace, 5)
    [batch_id] = sealer.run_once(force=True)
    assert {i.state for i in items(sealer)} == {ItemState.ATTACHED}
    trust = load_trust(workspace.trust_file())

    for package in packages:
        report = verify_package(package, trust)
        statuses = {r.id: r.status for r in report.checks}
        assert report.verdict is Verdict.VERIFIED_OFFLINE, report.to_json()
        assert all(statuses[i] is Status.PASS for i in ("H1", "H2", "H3", "H4", "T1", "T2"))
        assert statuses["H5"] is Status.WARN
    online = verify_package(packages[0], trust, chain=RpcChainSource(rpc_url))
    assert online.verdict is Verdict.VERIFIED and online.result("H5").status is Status.PASS

    with zipfile.ZipFile(packages[2]) as archive:
        proof = json.loads(archive.read("proof/proof.json"))
        anchor = json.loads(archive.read("proof/anchor.json"))
        (tmp_path / "t.tsr").write_bytes(archive.read("proof/timestamp-0.tsr"))
        (tmp_path / "tsa.pem").write_bytes(archive.read("proof/tsa-0.pem"))
    (tmp_path / "ca.pem").write_bytes(workspace.tsa.ca_certificate_pem())
    openssl = subprocess.run(["openssl", "ts", "-verify", "-digest", proof["root"], "-in", str(tmp_path / "t.tsr"),
                              "-CAfile", str(tmp_path / "ca.pem"), "-untrusted", str(tmp_path / "tsa.pem")],
                             capture_output=True, text=True)
    assert "Verification: OK" in openssl.stdout, openssl.stdout + openssl.stderr

    tx = rpc(rpc_url, "eth_getTransactionByHash", anchor["tx_hash"])
    data = bytes.fromhex(tx["input"][2:])
    assert data == b"TZ01" + bytes.fromhex(proof["root"]) + (5).to_bytes(8, "big")
    assert proof["batch_id"] == batch_id and proof["tree_size"] == 5


def test_cli_verifies_sealed_package(workspace: Workspace, served_tsa: TSAServer, rpc_url: str) -> None:
    sealer = make_sealer(workspace, served_tsa.url, rpc_url)
    [package] = accept(sealer, workspace, 1)
    sealer.run_once(force=True)
    cli = Path(sys.executable).parent / "tiezheng-verify"
    result = subprocess.run([str(cli), str(package), "--json", "--trust", str(workspace.trust_file()),
                             "--rpc", rpc_url], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout)["verdict"] == "verified"


def test_tsa_down_keeps_items_pending_then_recovers(workspace: Workspace, served_tsa: TSAServer,
                                                     rpc_url: str) -> None:
    down = make_sealer(workspace, CLOSED_PORT_URL, rpc_url)
    accept(down, workspace, 3)
    assert down.run_once(force=True) == []
    [batch] = batches(down)
    assert batch.state == BatchState.BATCHED and batch.attempts == 1
    assert "0 valid timestamp(s)" in (batch.last_error or "")
    assert {i.state for i in items(down)} == {ItemState.BATCHED}

    up = make_sealer(workspace, served_tsa.url, rpc_url)
    assert up.run_once(force=True) == [batch.id]
    assert {i.state for i in items(up)} == {ItemState.ATTACHED}


def test_rpc_down_keeps_batch_timestamped_then_recovers(workspace: Workspace, served_tsa: TSAServer,
                                                         rpc_url: str) -> None:
    down = make_sealer(workspace, served_tsa.url, CLOSED_PORT_URL)
    packages = accept(down, workspace, 2)
    assert down.run_once(force=True) == []
    [batch] = batches(down)
    assert batch.state == BatchState.TIMESTAMPED and "unavailable" in (batch.last_error or "")
    with zipfile.ZipFile(packages[0]) as archive:
        assert not any(n.startswith("proof/") for n in archive.namelist())  # never a proof before the anchor

    up = make_sealer(workspace, served_tsa.url, rpc_url)
    assert up.run_once(force=True) == [batch.id]


def test_garbage_tsa_is_rejected(workspace: Workspace, rpc_url: str) -> None:
    import http.server
    import threading

    class Garbage(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.send_header("Content-Type", "application/timestamp-reply")
            self.end_headers()
            self.wfile.write(b"\x30\x03\x02\x01\x00 not a token")

        def log_message(self, *_: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Garbage)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        sealer = make_sealer(workspace, f"http://127.0.0.1:{server.server_port}/", rpc_url)
        accept(sealer, workspace, 1)
        assert sealer.run_once(force=True) == []
        [batch] = batches(sealer)
        assert batch.state == BatchState.BATCHED and batch.last_error
    finally:
        server.shutdown()


def test_untrusted_tsa_is_rejected(workspace: Workspace, rpc_url: str, tmp_path: Path) -> None:
    evil = DevTSA(tmp_path / "evil")
    with evil.serve() as evil_server:
        sealer = make_sealer(workspace, evil_server.url, rpc_url)  # trusts the workspace CA, not evil's
        accept(sealer, workspace, 1)
        assert sealer.run_once(force=True) == []
    [batch] = batches(sealer)
    assert batch.state == BatchState.BATCHED and "trusted root" in (batch.last_error or "")


def test_only_one_sealer_works_at_a_time(workspace: Workspace, served_tsa: TSAServer, rpc_url: str) -> None:
    from anchor.sealer import LEASE_NAME, LEASE_TTL
    from anchor.store import acquire_lease

    first = make_sealer(workspace, served_tsa.url, rpc_url)
    second = make_sealer(workspace, served_tsa.url, rpc_url)
    accept(first, workspace, 2)
    assert acquire_lease(first.engine, LEASE_NAME, first.owner, LEASE_TTL)
    assert second.run_once(force=True) == []  # the lease is held by a live process
    assert {i.state for i in items(second)} == {ItemState.PENDING}


CRASH_POINTS = ["batched", "timestamped", "anchoring", "confirmed", "attaching"]


@pytest.mark.parametrize("kill_at", CRASH_POINTS)
def test_sigkill_at_each_transition_seals_exactly_once(workspace: Workspace, devnet: Devnet, kill_at: str) -> None:
    kill_and_restart(workspace, devnet.rpc_url, kill_at)


@pytest.mark.parametrize("kill_at", ["batched", "attaching", "marked"])
def test_sigkill_on_postgresql_seals_exactly_once(workspace: Workspace, devnet: Devnet, kill_at: str) -> None:
    """The set-based assignments and marks of PostgreSQL, killed where they commit."""
    database = postgres_database()
    if database is None:
        pytest.skip(f"PostgreSQL is not reachable at {postgres_where()} (set TIEZHENG_TEST_POSTGRES)")
    try:
        kill_and_restart(workspace, devnet.rpc_url, kill_at, database=database)
    finally:
        drop_postgres_database(database)


def kill_and_restart(workspace: Workspace, rpc_url: str, kill_at: str, *, database: str | None = None) -> None:
    """SIGKILL a sealer at ``kill_at``, restart it, and check every item is sealed exactly once."""
    sealer = make_sealer(workspace, CLOSED_PORT_URL, rpc_url, database=database)  # accepts; never seals here
    packages = accept(sealer, workspace, 4)
    run = [sys.executable, "-m", "tests.anchor.sealer_process", str(workspace.root), rpc_url]
    env = {**os.environ, "TIEZHENG_TEST_SEAL_DB": database or ""}
    killed = subprocess.run([*run, kill_at], capture_output=True, text=True, timeout=120,
                            cwd=Path(__file__).parents[2], env=env)
    assert killed.returncode == -9, killed.stderr
    if kill_at not in ("confirmed", "attaching", "marked"):
        for package in packages:
            with zipfile.ZipFile(package) as archive:  # no proof for a batch that was never anchored
                assert "proof/proof.json" not in archive.namelist()

    restarted = subprocess.run(run, capture_output=True, text=True, timeout=120, cwd=Path(__file__).parents[2],
                               env=env)
    assert restarted.returncode == 0, restarted.stderr
    assert {i.state for i in items(sealer)} == {ItemState.ATTACHED}
    [batch] = batches(sealer)
    assert batch.state == BatchState.ATTACHED and batch.tree_size == 4
    anchored = json.loads(batch.anchor_txs or "[]")
    assert len(anchored) == 1  # one transaction: the restart waited for it instead of signing another

    trust = load_trust(workspace.trust_file())
    fingerprints = set()
    for package in packages:
        report = verify_package(package, trust)
        assert report.verified, report.to_json()
        fingerprints.add(report.fingerprint)
    assert len(fingerprints) == 4
    # Exactly one anchor for this root on chain: scan the blocks since the batch was made.
    root = bytes.fromhex(batch.root)
    head = int(rpc(rpc_url, "eth_blockNumber"), 16)
    hits = 0
    for number in range(max(0, head - 30), head + 1):
        block = rpc(rpc_url, "eth_getBlockByNumber", hex(number), True)
        hits += sum(1 for tx in block["transactions"] if root.hex() in tx["input"])
    assert hits == 1


class _Forwarder:
    """A loopback HTTP server that hands each POST body to ``handle`` and returns its answer."""

    def __init__(self, handle: Callable[[bytes], tuple[str, bytes]]) -> None:
        import http.server
        import threading

        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                content_type, answer = outer.handle(body)
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *_: object) -> None:
                pass

        self.handle = handle
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


def test_token_for_another_digest_is_rejected(workspace: Workspace, rpc_url: str) -> None:
    from asn1crypto import tsp

    def sign_something_else(body: bytes) -> tuple[str, bytes]:
        request = tsp.TimeStampReq.load(body)
        request["message_imprint"]["hashed_message"] = bytes(32)  # a dishonest or broken TSA
        return "application/timestamp-reply", workspace.tsa.respond(request.dump(force=True))

    liar = _Forwarder(sign_something_else)
    try:
        sealer = make_sealer(workspace, liar.url, rpc_url)
        accept(sealer, workspace, 1)
        assert sealer.run_once(force=True) == []
    finally:
        liar.close()
    [batch] = batches(sealer)
    assert batch.state == BatchState.BATCHED and "imprint" in (batch.last_error or "")


def test_slow_rpc_still_seals_correctly(workspace: Workspace, served_tsa: TSAServer, rpc_url: str) -> None:
    import time
    import urllib.request

    def slowly(body: bytes) -> tuple[str, bytes]:
        time.sleep(0.05)
        request = urllib.request.Request(rpc_url, data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as answer:
            return "application/json", answer.read()

    slow = _Forwarder(slowly)
    try:
        sealer = make_sealer(workspace, served_tsa.url, slow.url)
        packages = accept(sealer, workspace, 2)
        assert len(sealer.run_once(force=True)) == 1
    finally:
        slow.close()
    assert verify_package(packages[1], load_trust(workspace.trust_file())).verified
