"""Two independent anchors per batch, on two real anvil devnets with different chain ids.

Both up: both anchors attached and verified. The second down: sealed with the first, the second
attached when it is back, the fingerprint unchanged. SIGKILL between the two broadcasts: no
duplicate on either chain. A tampered second anchor fails alone and the verdict follows min_chains.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import Session, select

from anchor.devnet import DEV_OPERATOR_ADDRESS, DEV_OPERATOR_KEY, DEVNET_CHAIN_ID, SECOND_DEVNET_CHAIN_ID, Devnet
from anchor.sealer import ChainEndpoint, Sealer, SealerConfig, batch_status
from anchor.store import AnchorState, BatchState, ItemState, SealAnchor, make_engine, sqlite_url
from anchor.tsa_server import TSAServer
from tests.anchor.conftest import rpc
from tests.anchor.test_sealer import accept, batches, endpoint, items
from tests.api.test_cli import tiezheng
from tests.factory import Workspace
from tests.tamper import flip_byte, replace_entry
from verifier.chain_source import ChainSources, RpcChainSource
from verifier.trust import Trust, load_trust
from verifier.verdict import Status, Verdict
from verifier.verify import verify_package
from verifier.wacz import Member, rewrite_package

SECOND = f"proof/anchor-{SECOND_DEVNET_CHAIN_ID}.json"


@pytest.fixture()
def served_tsa(workspace: Workspace) -> Iterator[TSAServer]:
    with workspace.tsa.serve() as server:
        yield server


@pytest.fixture()
def second_devnet(anvil: Path, tmp_path: Path) -> Iterator[Devnet]:
    node = Devnet.second(tmp_path / "second", anvil=anvil, die_with_parent=True)
    node.start()
    try:
        yield node
    finally:
        node.stop()


def chains(first_url: str, second_url: str) -> tuple[ChainEndpoint, ...]:
    return (ChainEndpoint(first_url, DEVNET_CHAIN_ID, DEV_OPERATOR_KEY, name="devnet"),
            ChainEndpoint(second_url, SECOND_DEVNET_CHAIN_ID, DEV_OPERATOR_KEY, name="second devnet"))


def two_chain_sealer(workspace: Workspace, tsa_url: str, first_url: str, second_url: str,
                     min_chains: int = 1) -> Sealer:
    config = SealerConfig(tsas=(endpoint(workspace.tsa, tsa_url),), chains=chains(first_url, second_url),
                          min_chains=min_chains, tsa_attempts=1, anchor_timeout=30)
    return Sealer(make_engine(sqlite_url(workspace.root / "tiezheng.db")), config)


def trust(workspace: Workspace, min_chains: int) -> tuple[Path, Trust]:
    path = workspace.trust_file()
    path.write_text(path.read_text() + "\n".join([
        "", "[[chains]]", f"chain_id = {SECOND_DEVNET_CHAIN_ID}", 'name = "second test devnet"', "confirmations = 1",
        "development = true", "", "[policy]", f"min_chains = {min_chains}", ""]))
    return path, load_trust(path)


def sent_by_operator(url: str) -> int:
    """Transactions the operator ever sent on a chain (its pending nonce): counts every broadcast."""
    return int(rpc(url, "eth_getTransactionCount", DEV_OPERATOR_ADDRESS, "pending"), 16)


def names(package: Path) -> set[str]:
    with zipfile.ZipFile(package) as archive:
        return {n for n in archive.namelist() if n.startswith("proof/anchor")}


def anchor_rows(sealer: Sealer) -> list[SealAnchor]:
    with Session(sealer.engine) as session:
        return list(session.exec(select(SealAnchor).order_by(SealAnchor.chain_id)).all())


def h5_parts(report_json: dict[str, object]) -> dict[str, str]:
    return {a["file"]: a["status"] for a in report_json["facts"]["anchors"]}  # type: ignore[index]


def test_both_chains_anchor_attach_and_verify(workspace: Workspace, served_tsa: TSAServer, devnet: Devnet,
                                              second_devnet: Devnet) -> None:
    first_url, second_url = devnet.rpc_url, second_devnet.rpc_url
    before = sent_by_operator(first_url), sent_by_operator(second_url)
    sealer = two_chain_sealer(workspace, served_tsa.url, first_url, second_url, min_chains=2)
    packages = accept(sealer, workspace, 3)
    [batch_id] = sealer.run_once(force=True)
    # One transaction per batch per chain.
    assert (sent_by_operator(first_url), sent_by_operator(second_url)) == (before[0] + 1, before[1] + 1)
    assert [r.state for r in anchor_rows(sealer)] == [AnchorState.ATTACHED, AnchorState.ATTACHED]
    status = batch_status(sealer.engine, batch_id)
    assert status is not None and [a["chain_id"] for a in status["anchors"]] == [DEVNET_CHAIN_ID,
                                                                                  SECOND_DEVNET_CHAIN_ID]

    trust_path, two = trust(workspace, min_chains=2)
    for package in packages:
        assert names(package) == {"proof/anchor.json", SECOND}
        offline = verify_package(package, two)
        assert offline.verdict is Verdict.VERIFIED_OFFLINE, offline.failed_ids
        assert h5_parts(offline.to_json()) == {"proof/anchor.json": "warn", SECOND: "warn"}
    online = verify_package(packages[0], two, chain=ChainSources(
        {DEVNET_CHAIN_ID: RpcChainSource(first_url), SECOND_DEVNET_CHAIN_ID: RpcChainSource(second_url)}))
    assert online.verdict is Verdict.VERIFIED, online.to_json()
    assert h5_parts(online.to_json()) == {"proof/anchor.json": "pass", SECOND: "pass"}
    # T1 and T2 read the earliest anchor: the first chain's, anchored first.
    assert online.to_json()["facts"]["anchor"]["chain_id"] == DEVNET_CHAIN_ID

    cli = Path(sys.executable).parent / "tiezheng-verify"
    command = [str(cli), str(packages[1]), "--json", "--trust", str(trust_path),
               "--rpc", f"{DEVNET_CHAIN_ID}={first_url}", "--rpc", f"{SECOND_DEVNET_CHAIN_ID}={second_url}"]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout)["verdict"] == "verified"
    # Only one chain given online: min_chains = 2 cannot be met online, so not "verified".
    partial = subprocess.run([*command[:-4], "--rpc", first_url], capture_output=True, text=True)
    assert partial.returncode == 1, partial.stdout
    parts = h5_parts(json.loads(partial.stdout))
    assert parts == {"proof/anchor.json": "pass", SECOND: "warn"}


def test_second_chain_down_seals_with_one_and_attaches_the_other_later(
        workspace: Workspace, served_tsa: TSAServer, devnet: Devnet, second_devnet: Devnet) -> None:
    second_devnet.start()
    down_url = second_devnet.rpc_url
    second_devnet.stop()  # down during sealing (its state is kept)
    sealer = two_chain_sealer(workspace, served_tsa.url, devnet.rpc_url, down_url)
    packages = accept(sealer, workspace, 2)
    [batch_id] = sealer.run_once(force=True)
    assert {i.state for i in items(sealer)} == {ItemState.ATTACHED}
    first, second = anchor_rows(sealer)
    assert first.state == AnchorState.ATTACHED
    assert second.state == AnchorState.PENDING and second.attempts >= 1 and "unavailable" in (second.last_error or "")
    shown = json.loads(tiezheng(workspace.root, "status", "--json").stdout)  # the operator sees what is missing
    assert [(m["batch_id"], m["chain_id"]) for m in shown["missing_anchors"]] == [(batch_id, SECOND_DEVNET_CHAIN_ID)]
    _, one_required = trust(workspace, min_chains=1)
    _, two_required = trust(workspace, min_chains=2)
    fingerprints = [verify_package(p, one_required).fingerprint for p in packages]
    for package in packages:
        assert names(package) == {"proof/anchor.json"}
        assert verify_package(package, one_required).verdict is Verdict.VERIFIED_OFFLINE
        assert verify_package(package, two_required).verdict is Verdict.FAILED

    # Back, on a new port: the sealer (configured with it) finishes the missing anchor.
    up_url = second_devnet.start()
    restarted = two_chain_sealer(workspace, served_tsa.url, devnet.rpc_url, up_url)
    assert restarted.run_once(force=True) == []  # no new batch; the late anchor is attached
    assert [r.state for r in anchor_rows(restarted)] == [AnchorState.ATTACHED, AnchorState.ATTACHED]
    assert sent_by_operator(up_url) == 1
    for package, fingerprint in zip(packages, fingerprints, strict=True):
        assert names(package) == {"proof/anchor.json", SECOND}
        report = verify_package(package, two_required, chain=ChainSources(
            {DEVNET_CHAIN_ID: RpcChainSource(devnet.rpc_url), SECOND_DEVNET_CHAIN_ID: RpcChainSource(up_url)}))
        assert report.verdict is Verdict.VERIFIED, report.to_json()
        assert report.fingerprint == fingerprint  # adding a proof never changes the fingerprint
    [batch] = batches(restarted)
    assert batch.id == batch_id and batch.state == BatchState.ATTACHED


def test_min_chains_two_waits_for_both(workspace: Workspace, served_tsa: TSAServer, devnet: Devnet,
                                       second_devnet: Devnet) -> None:
    down_url = second_devnet.rpc_url
    second_devnet.stop()
    sealer = two_chain_sealer(workspace, served_tsa.url, devnet.rpc_url, down_url, min_chains=2)
    packages = accept(sealer, workspace, 1)
    assert sealer.run_once(force=True) == []
    [batch] = batches(sealer)
    # Never "sealed" with fewer confirmed anchors than required; no proof in the package yet.
    assert batch.state == BatchState.ANCHORING and "1 confirmed anchor(s), 2 needed" in (batch.last_error or "")
    assert names(packages[0]) == set()
    restarted = two_chain_sealer(workspace, served_tsa.url, devnet.rpc_url, second_devnet.start(), min_chains=2)
    assert restarted.run_once(force=True) == [batch.id]
    assert names(packages[0]) == {"proof/anchor.json", SECOND}


@pytest.mark.parametrize("kill_at", [f"confirmed:{DEVNET_CHAIN_ID}", f"signed:{SECOND_DEVNET_CHAIN_ID}"])
def test_sigkill_between_the_two_broadcasts_sends_no_duplicate(workspace: Workspace, devnet: Devnet,
                                                               second_devnet: Devnet, kill_at: str) -> None:
    first_url, second_url = devnet.rpc_url, second_devnet.rpc_url
    before = sent_by_operator(first_url), sent_by_operator(second_url)
    sealer = two_chain_sealer(workspace, "http://127.0.0.1:9/", first_url, second_url)  # accepts only
    packages = accept(sealer, workspace, 3)
    spec = f"{DEVNET_CHAIN_ID}={first_url},{SECOND_DEVNET_CHAIN_ID}={second_url}"
    run = [sys.executable, "-m", "tests.anchor.sealer_process", str(workspace.root), spec]
    killed = subprocess.run([*run, kill_at], capture_output=True, text=True, timeout=120,
                            cwd=Path(__file__).parents[2])
    assert killed.returncode == -9, killed.stderr
    assert sent_by_operator(first_url) == before[0] + 1

    restarted = subprocess.run(run, capture_output=True, text=True, timeout=120, cwd=Path(__file__).parents[2])
    assert restarted.returncode == 0, restarted.stderr
    assert (sent_by_operator(first_url), sent_by_operator(second_url)) == (before[0] + 1, before[1] + 1)
    [batch] = batches(sealer)
    assert batch.state == BatchState.ATTACHED and len(json.loads(batch.anchor_txs or "[]")) == 2
    _, two_required = trust(workspace, min_chains=2)
    for package in packages:
        assert names(package) == {"proof/anchor.json", SECOND}
        assert verify_package(package, two_required).verified


def test_tampered_second_anchor_fails_alone(workspace: Workspace, served_tsa: TSAServer, devnet: Devnet,
                                            second_devnet: Devnet, tmp_path: Path) -> None:
    sealer = two_chain_sealer(workspace, served_tsa.url, devnet.rpc_url, second_devnet.rpc_url)
    [package] = accept(sealer, workspace, 1)
    sealer.run_once(force=True)
    _, one_required = trust(workspace, min_chains=1)
    _, two_required = trust(workspace, min_chains=2)
    with zipfile.ZipFile(package) as archive:
        first_anchor = archive.read("proof/anchor.json")
        second_anchor = json.loads(archive.read(SECOND))

    def edited(**changes: object) -> bytes:
        return json.dumps({**second_anchor, **changes}).encode()

    def tampered(target: str, files: dict[str, bytes]) -> Path:
        """A copy rewritten with ``files`` as the sealer would write them (datapackage.json kept
        consistent), so that only the anchor can tell."""
        copy = tmp_path / target
        shutil.copy(package, copy)
        rewrite_package(copy, [Member(n, data=d) for n, d in files.items()], drop=lambda n: n == SECOND)
        return copy

    copies = {
        # A byte of the proof, the block it names, the transaction, the claimed time.
        "flipped byte": tampered("a.wacz", {SECOND: flip_byte(json.dumps(second_anchor).encode(), 200)}),
        "block hash": tampered("b.wacz", {SECOND: edited(block_hash="0x" + "11" * 32)}),
        "block time": tampered("c.wacz", {SECOND: edited(block_time=second_anchor["block_time"] - 3600)}),
        "raw tx": tampered("d.wacz", {SECOND: edited(raw_tx=second_anchor["raw_tx"][:-2] + "00")}),
        # The first chain's anchor passed off as the second: one chain, two files.
        "copy of the first": tampered("e.wacz", {SECOND: first_anchor}),
    }
    for what, copy in copies.items():
        report = verify_package(copy, one_required).to_json()
        parts = h5_parts(report)
        assert parts["proof/anchor.json"] == "warn", what
        assert parts[SECOND] == "fail", (what, report["facts"]["anchors"])
        assert report["verdict"] == "verified (offline)", (what, [c for c in report["checks"] if c["status"] == "fail"])
        strict = verify_package(copy, two_required)
        assert strict.verdict is Verdict.FAILED and strict.result("H5").status is Status.FAIL, what
        assert "anchor-31338.json fail" in strict.result("H5").reason, what

    # The same chain twice under two names counts once.
    doubled = tampered("f.wacz", {f"proof/anchor-{DEVNET_CHAIN_ID}.json": first_anchor})
    assert verify_package(doubled, two_required).result("H5").status is Status.FAIL
    assert verify_package(doubled, one_required).verified
    # A naive edit that leaves datapackage.json stale also fails P3.
    naive = replace_entry(package, tmp_path / "g.wacz", SECOND, lambda d: flip_byte(d, len(d) // 2))
    assert verify_package(naive, one_required).result("P3").status is Status.FAIL
    # Untampered: both hold under either policy.
    assert verify_package(package, two_required).verdict is Verdict.VERIFIED_OFFLINE


def test_second_anchor_on_an_untrusted_chain_or_in_excess_stands_alone(
        workspace: Workspace, served_tsa: TSAServer, devnet: Devnet, second_devnet: Devnet, tmp_path: Path) -> None:
    sealer = two_chain_sealer(workspace, served_tsa.url, devnet.rpc_url, second_devnet.rpc_url)
    [package] = accept(sealer, workspace, 1)
    sealer.run_once(force=True)
    only_first = load_trust(workspace.trust_file())  # trusts chain 31337 alone, min_chains 1
    report = verify_package(package, only_first)
    assert report.verdict is Verdict.VERIFIED_OFFLINE
    [second] = [a for a in report.to_json()["facts"]["anchors"] if a["file"] == SECOND]
    assert second["status"] == "skip" and "cannot judge: chain 31338" in second["reason"]
    # Required on two chains but the second is not trusted: the trust given cannot say, not "failed".
    strict_but_short = workspace.trust_file()
    strict_but_short.write_text(strict_but_short.read_text() + "\n[policy]\nmin_chains = 2\n")
    unjudged = verify_package(package, load_trust(strict_but_short))
    assert unjudged.verdict is Verdict.CANNOT_JUDGE, unjudged.to_json()["checks"]
    assert any("chain 31338" in what for _, what in unjudged.missing_trust)

    with zipfile.ZipFile(package) as archive:
        first_anchor = archive.read("proof/anchor.json")
    flood = tmp_path / "flood.wacz"
    shutil.copy(package, flood)
    rewrite_package(flood, [Member(f"proof/anchor-{n}.json", data=first_anchor) for n in range(1, 40)],
                    drop=lambda _: False)
    flooded = verify_package(flood, only_first).to_json()
    parts = flooded["facts"]["anchors"]
    assert len(parts) == 41 and sum("not checked" in a["reason"] for a in parts) == 41 - 16
    assert flooded["verdict"] == "verified (offline)"  # the real anchor still holds; every extra failed


def test_restart_after_upgrade_resumes_a_single_chain_anchor(workspace: Workspace, devnet: Devnet) -> None:
    """A store from before per-chain rows: the signed tx is only in seal_batch.anchor_txs."""
    url = devnet.rpc_url
    before = sent_by_operator(url)
    sealer = two_chain_sealer(workspace, "http://127.0.0.1:9/", url, url)  # accepts only
    packages = accept(sealer, workspace, 2)
    run = [sys.executable, "-m", "tests.anchor.sealer_process", str(workspace.root), url]
    killed = subprocess.run([*run, f"signed:{DEVNET_CHAIN_ID}"], capture_output=True, text=True, timeout=120,
                            cwd=Path(__file__).parents[2])
    assert killed.returncode == -9, killed.stderr
    with Session(sealer.engine) as session:  # as an older version left it: no anchor rows
        for row in session.exec(select(SealAnchor)).all():
            session.delete(row)
        session.commit()
    [batch] = batches(sealer)
    assert batch.state == BatchState.ANCHORING and len(json.loads(batch.anchor_txs or "[]")) == 1

    restarted = subprocess.run(run, capture_output=True, text=True, timeout=120, cwd=Path(__file__).parents[2])
    assert restarted.returncode == 0, restarted.stderr
    assert sent_by_operator(url) == before + 1  # the stored transaction, not a second one
    assert verify_package(packages[0], load_trust(workspace.trust_file())).verified


def test_a_bare_rpc_of_another_chain_still_fails_a_one_chain_package(
        workspace: Workspace, served_tsa: TSAServer, devnet: Devnet, second_devnet: Devnet) -> None:
    from tests.anchor.test_sealer import make_sealer

    sealer = make_sealer(workspace, served_tsa.url, devnet.rpc_url)  # the one-chain configuration
    [package] = accept(sealer, workspace, 1)
    sealer.run_once(force=True)
    assert names(package) == {"proof/anchor.json"}
    trust_one = load_trust(workspace.trust_file())
    wrong = verify_package(package, trust_one, chain=RpcChainSource(second_devnet.rpc_url))
    assert wrong.verdict is Verdict.FAILED
    assert wrong.result("H5").reason == f"the RPC serves chain {SECOND_DEVNET_CHAIN_ID}, the anchor is on chain 31337"
    right = verify_package(package, trust_one, chain=RpcChainSource(devnet.rpc_url))
    assert right.verdict is Verdict.VERIFIED
