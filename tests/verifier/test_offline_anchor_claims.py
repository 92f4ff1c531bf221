"""Offline never borrows trust: a fabricated anchor around a genuine package.

Each test takes a really sealed package and replaces its proof/anchor.json with a made-up block
that is internally consistent (header hashes to block_hash, the transaction trie holds the anchor
transaction, the transaction carries TZ01‖root‖size), exactly what anyone can build without a
chain. Offline it must not read as fully verified; online, the real devnet refutes it (H5).
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import rlp
from eth_account import Account
from eth_hash.auto import keccak

from anchor.chain_proof import transactions_trie
from anchor.devnet import DEV_OPERATOR_KEY, DEVNET_CHAIN_ID
from tests.factory import Workspace, seal_batch
from tests.tamper import replace_sealed_entry
from verifier.anchor_proof import calldata
from verifier.chain_source import RpcChainSource
from verifier.checks.anchor_claims import EMPTY_UNCLES_HASH, MERGE_BLOCK, MERGE_TIME, SLOT
from verifier.trust import default_trust, load_trust
from verifier.verdict import Status, Verdict
from verifier.verify import verify_package

MAINNET = 1


@pytest.fixture()
def sealed(workspace: Workspace, rpc_url: str) -> Path:
    packages = [workspace.upload([("exhibit.txt", f"copy {i}\n".encode())]) for i in range(2)]
    seal_batch(workspace, packages, rpc_url)
    return packages[0].path


def _anchor(package: Path) -> dict[str, Any]:
    import zipfile

    with zipfile.ZipFile(package) as archive:
        return dict(json.loads(archive.read("proof/anchor.json")))


def _raw_tx(chain_id: int, root: bytes, size: int) -> bytes:
    """A real signed EIP-1559 anchor transaction for ``chain_id`` (never sent anywhere)."""
    tx = {"type": 2, "chainId": chain_id, "nonce": 7, "to": "0x" + "11" * 20, "value": 0, "gas": 40_000,
          "maxFeePerGas": 30 * 10**9, "maxPriorityFeePerGas": 10**9, "data": calldata(root, size)}
    signed = Account.sign_transaction(tx, DEV_OPERATOR_KEY)
    return bytes(getattr(signed, "raw_transaction", None) or signed.rawTransaction)


def _fabricate(genuine: dict[str, Any], *, chain_id: int, number: int, when: int, raw_tx: bytes) -> dict[str, Any]:
    """A block nobody mined, holding ``raw_tx`` alone, with a post-Cancun mainnet-shaped header."""
    trie = transactions_trie([raw_tx])
    header = [keccak(b"parent"), EMPTY_UNCLES_HASH, b"\x22" * 20, keccak(b"state"), trie.root_hash,
              keccak(b"receipts"), bytes(256), 0, number, 30_000_000, 21_000 + 700, when, b"made up",
              keccak(b"randao"), bytes(8), 7, keccak(b"withdrawals"), 0, 0, keccak(b"beacon")]
    encoded = rlp.encode(header)
    proof = trie.get_proof(rlp.encode(0))
    return {"format": genuine.get("format", "tiezheng-anchor/1"), "chain_id": chain_id,
            "tx_hash": "0x" + keccak(raw_tx).hex(), "raw_tx": "0x" + raw_tx.hex(), "block_number": number,
            "block_hash": "0x" + keccak(encoded).hex(), "block_time": when, "tx_index": 0,
            "header_rlp": "0x" + encoded.hex(), "tx_proof": ["0x" + rlp.encode(node).hex() for node in proof]}


def _with_anchor(package: Path, target: Path, anchor: dict[str, Any]) -> Path:
    return replace_sealed_entry(package, target, "proof/anchor.json",
                                lambda _: json.dumps(anchor, sort_keys=True).encode())


def _mainnet_number(when: int) -> int:
    slots = int((datetime.fromtimestamp(when, UTC) - MERGE_TIME) / SLOT)
    return MERGE_BLOCK + int(slots * 0.99)


def _root_and_size(package: Path) -> tuple[bytes, int]:
    import zipfile

    with zipfile.ZipFile(package) as archive:
        proof = json.loads(archive.read("proof/proof.json"))
    return bytes.fromhex(proof["root"]), int(proof["tree_size"])


def _trust(workspace: Workspace):  # type: ignore[no-untyped-def]
    return default_trust().merged(load_trust(workspace.trust_file()))


def test_careful_fabrication_on_mainnet_is_not_fully_verified_offline(
        workspace: Workspace, sealed: Path, tmp_path: Path) -> None:
    genuine = _anchor(sealed)
    root, size = _root_and_size(sealed)
    when = genuine["block_time"] + 12
    fake = _fabricate(genuine, chain_id=MAINNET, number=_mainnet_number(when), when=when,
                      raw_tx=_raw_tx(MAINNET, root, size))
    report = verify_package(_with_anchor(sealed, tmp_path / "fake-mainnet.wacz", fake), _trust(workspace))
    assert report.verdict is Verdict.VERIFIED_OFFLINE, report.to_json()["checks"]
    assert report.verdict is not Verdict.VERIFIED
    # Nothing passes on the claimed block: H5 warns, T1/T2 pass on the TSA time and say what stayed open.
    assert report.result("H5").status is Status.WARN
    for check in ("T1", "T2"):
        reason = report.result(check).reason
        assert "Not checked offline" in reason and "--rpc URL" in reason, reason
    assert {check for check, _ in report.not_checked} == {"H5", "T1", "T2"}
    assert all("--rpc URL" in what for _, what in report.not_checked)
    assert report.to_json()["facts"]["prechain_gap_until"] == "TSA time (offline)"
    assert not any("block time shown" in sentence for sentence in report.proves)


def test_careless_fabrications_fail_offline_plausibility(workspace: Workspace, sealed: Path, tmp_path: Path) -> None:
    genuine = _anchor(sealed)
    root, size = _root_and_size(sealed)
    raw = _raw_tx(MAINNET, root, size)
    when = genuine["block_time"] + 12
    cases = {
        "number": _fabricate(genuine, chain_id=MAINNET, number=99_999_999, when=when, raw_tx=raw),
        "future": _fabricate(genuine, chain_id=MAINNET, number=_mainnet_number(when + 10**8), when=when + 10**8,
                             raw_tx=raw),
        "before the TSA": _fabricate(genuine, chain_id=MAINNET, number=_mainnet_number(when - 86_400),
                                     when=when - 86_400, raw_tx=raw),
    }
    for name, fake in cases.items():
        report = verify_package(_with_anchor(sealed, tmp_path / f"{name}.wacz", fake), _trust(workspace))
        assert report.result("T1").status is Status.FAIL, (name, report.result("T1").reason)
        assert report.verdict is Verdict.FAILED, name


def test_fabricated_devnet_block_fails_online(workspace: Workspace, sealed: Path, tmp_path: Path,
                                             rpc_url: str) -> None:
    genuine = _anchor(sealed)
    fake = _fabricate(genuine, chain_id=DEVNET_CHAIN_ID, number=genuine["block_number"],
                      when=genuine["block_time"], raw_tx=bytes.fromhex(genuine["raw_tx"][2:]))
    package = _with_anchor(sealed, tmp_path / "fake-devnet.wacz", fake)
    trust = load_trust(workspace.trust_file())
    offline = verify_package(package, trust)
    assert offline.verdict is Verdict.VERIFIED_OFFLINE and offline.result("H5").status is Status.WARN
    online = verify_package(package, trust, chain=RpcChainSource(rpc_url))
    assert online.result("H5").status is Status.FAIL and online.verdict is Verdict.FAILED
    # The genuine package still verifies online against the same node.
    assert verify_package(sealed, trust, chain=RpcChainSource(rpc_url)).verdict is Verdict.VERIFIED


def test_cli_names_what_was_not_checked(workspace: Workspace, sealed: Path, tmp_path: Path) -> None:
    genuine = _anchor(sealed)
    fake = _fabricate(genuine, chain_id=DEVNET_CHAIN_ID, number=genuine["block_number"],
                      when=genuine["block_time"], raw_tx=bytes.fromhex(genuine["raw_tx"][2:]))
    package = _with_anchor(sealed, tmp_path / "fake.wacz", fake)
    result = subprocess.run([str(Path(sys.executable).parent / "tiezheng-verify"), str(package), "--trust",
                             str(workspace.trust_file()), "--json"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["verdict"] == "verified (offline)"
    assert {item["check"] for item in body["not_checked"]} == {"H5", "T1", "T2"}
    assert all("--rpc URL" in line for line in body["findings"])
