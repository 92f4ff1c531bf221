"""Offline anchor proofs from a real anvil block full of transactions, and their tampering."""

from __future__ import annotations

import copy
import hashlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import rlp

from anchor.chain_proof import fetch_offline_proof
from anchor.devnet import DEV_OPERATOR_KEY, Devnet
from anchor.ethereum import anchor_root, verifiable_part
from tests.anchor.conftest import rpc
from verifier.anchor_proof import (
    MAX_PROOF_NODES,
    AnchorProofError,
    calldata,
    decode_transaction,
    parse_calldata,
    verify_offline_anchor,
)

ROOT = hashlib.sha256(b"offline root").digest()
TREE_SIZE = 1_000_000
#: Enough other transactions that rlp(index) keys reach two bytes (index >= 128), as on a busy
#: chain, so the proof has a branch, an extension-or-branch and a leaf.
FILLER_TXS = 140
FILLER_FEES = {"maxPriorityFeePerGas": hex(5 * 10**9), "maxFeePerGas": hex(50 * 10**9)}


@pytest.fixture(scope="module")
def busy_anchor(anvil: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """An anchor record whose transaction shares its block with FILLER_TXS others."""
    node = Devnet(tmp_path_factory.mktemp("busy-chain"), anvil=anvil, die_with_parent=True)
    url = node.start()
    try:
        rpc(url, "evm_setAutomine", False)
        senders = rpc(url, "eth_accounts")[1:]  # anvil's unlocked dev accounts, not the operator
        for i in range(FILLER_TXS):
            sender = senders[i % len(senders)]
            # Tipping more than the anchor puts them first, so the anchor's key is two bytes long.
            rpc(url, "eth_sendTransaction", {"from": sender, "to": sender, "value": hex(i), **FILLER_FEES})
        result: dict[str, Any] = {}
        sent = threading.Event()

        def run() -> None:
            result["record"] = anchor_root(url, DEV_OPERATOR_KEY, ROOT, TREE_SIZE, on_signed=lambda h, r: sent.set())

        worker = threading.Thread(target=run)
        worker.start()
        assert sent.wait(10)
        time.sleep(0.05)  # let the broadcast land in the pool
        rpc(url, "evm_mine")
        worker.join(10)
        record = result["record"]
        block = rpc(url, "eth_getBlockByHash", record["block_hash"], False)
        assert len(block["transactions"]) == FILLER_TXS + 1
        assert record["tx_index"] >= 128, "the anchor should sit behind the fillers"
        yield verifiable_part(record)
    finally:
        node.stop()


def test_offline_proof_verifies(busy_anchor: dict[str, Any]) -> None:
    assert verify_offline_anchor(busy_anchor) == (ROOT, TREE_SIZE)
    nodes = [bytes.fromhex(n[2:]) for n in busy_anchor["tx_proof"]]
    # Branch nodes down the nibbles of rlp(index), then the leaf holding the raw transaction.
    assert 3 <= len(nodes) <= MAX_PROOF_NODES
    assert nodes[-1].endswith(bytes.fromhex(busy_anchor["raw_tx"][2:]))
    assert sum(map(len, nodes)) < 4096


def test_proof_is_what_the_node_says(devnet: Devnet) -> None:
    record = anchor_root(devnet.rpc_url, DEV_OPERATOR_KEY, ROOT, 3)
    fetched = fetch_offline_proof(
        lambda method, params: rpc(devnet.rpc_url, method, *params), record["block_hash"], record["tx_hash"]
    )
    assert fetched == {key: record[key] for key in ("header_rlp", "tx_proof", "tx_index", "transactions_root")}
    block = rpc(devnet.rpc_url, "eth_getBlockByHash", record["block_hash"], False)
    assert record["transactions_root"] == block["transactionsRoot"]


def _flip_each_byte(value: str) -> Iterator[str]:
    data = bytes.fromhex(value[2:])
    for position in range(len(data)):
        for mask in (0x01, 0x80):
            mutated = bytearray(data)
            mutated[position] ^= mask
            yield "0x" + mutated.hex()


def _rejects(record: dict[str, Any], field: str, value: Any, position: int | None = None) -> None:
    """verify_offline_anchor must refuse ``record`` with ``field`` (or its item) set to ``value``."""
    tampered = copy.deepcopy(record)
    if position is None:
        tampered[field] = value
    else:
        tampered[field][position] = value
    with pytest.raises(AnchorProofError):
        verify_offline_anchor(tampered)


@pytest.mark.parametrize("field", ["header_rlp", "raw_tx", "tx_hash", "block_hash", "transactions_root"])
def test_every_single_byte_mutation_is_rejected(busy_anchor: dict[str, Any], field: str) -> None:
    for mutated in _flip_each_byte(busy_anchor[field]):
        _rejects(busy_anchor, field, mutated)


def test_every_single_byte_mutation_of_a_proof_node_is_rejected(busy_anchor: dict[str, Any]) -> None:
    for position, node in enumerate(busy_anchor["tx_proof"]):
        for mutated in _flip_each_byte(node):
            _rejects(busy_anchor, "tx_proof", mutated, position)


def test_every_other_tx_index_is_rejected(busy_anchor: dict[str, Any]) -> None:
    index = busy_anchor["tx_index"]
    for other in {*range(FILLER_TXS + 3), index ^ 0x01, index ^ 0x80, index + 256} - {index}:
        _rejects(busy_anchor, "tx_index", other)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda r: r.__setitem__("tx_proof", r["tx_proof"][:-1]), "proof"),
        (lambda r: r.__setitem__("tx_proof", r["tx_proof"][1:]), "proof"),
        (lambda r: r.__setitem__("tx_proof", []), "non-empty"),
        (lambda r: r.__setitem__("tx_proof", r["tx_proof"] * 9), "more than"),
        (lambda r: r.__setitem__("block_number", r["block_number"] + 1), "block number"),
        (lambda r: r.__setitem__("block_time", r["block_time"] - 1), "timestamp"),
        (lambda r: r.__setitem__("block_time_utc", "2001-01-01T00:00:00Z"), "block_time_utc"),
        (lambda r: r.__setitem__("chain_id", 1), "chain"),
        (lambda r: r.__setitem__("to", "0x" + "00" * 20), "goes to"),
        (lambda r: r.__setitem__("tx_index", True), "non-negative integer"),
        (lambda r: r.__setitem__("tx_index", "0"), "non-negative integer"),
        (lambda r: r.__setitem__("raw_tx", r["raw_tx"][2:]), "0x"),
        (lambda r: r.__setitem__("header_rlp", "0xzz"), "hex"),
        (lambda r: r.pop("tx_hash"), "lacks tx_hash"),
    ],
)
def test_structural_tampering_is_rejected(
    busy_anchor: dict[str, Any], mutate: Callable[[dict[str, Any]], None], message: str
) -> None:
    tampered = copy.deepcopy(busy_anchor)
    mutate(tampered)
    with pytest.raises(AnchorProofError, match=message):
        verify_offline_anchor(tampered)


def test_errors_are_value_errors(busy_anchor: dict[str, Any]) -> None:
    """Callers that only know ValueError still catch every proof failure."""
    with pytest.raises(ValueError):
        verify_offline_anchor({**busy_anchor, "tx_hash": "0x" + "00" * 32})


def test_calldata_round_trip_and_refusals() -> None:
    data = calldata(ROOT, 2**64 - 1)
    assert len(data) == 44 and data.startswith(b"TZ01")
    assert parse_calldata(data) == (ROOT, 2**64 - 1)
    for bad, message in [
        (data[:-1], "44 bytes"),
        (b"TZ02" + data[4:], "start with"),
        (b"TZ01" + ROOT + bytes(8), "empty tree"),
    ]:
        with pytest.raises(AnchorProofError, match=message):
            parse_calldata(bad)
    with pytest.raises(ValueError, match="tree size"):
        calldata(ROOT, 2**64)


def test_decode_legacy_and_typed_transactions(busy_anchor: dict[str, Any]) -> None:
    typed = decode_transaction(bytes.fromhex(busy_anchor["raw_tx"][2:]))
    assert (typed.tx_type, typed.chain_id, typed.data) == (2, busy_anchor["chain_id"], calldata(ROOT, TREE_SIZE))
    # An EIP-155 legacy transaction: v = chain_id * 2 + 35 (+1).
    to = bytes.fromhex(busy_anchor["to"][2:])
    legacy = rlp.encode([0, 1, 21000, to, 0, b"TZ01", 31337 * 2 + 35, 1, 1])
    decoded = decode_transaction(legacy)
    assert (decoded.tx_type, decoded.chain_id, decoded.to, decoded.data) == (0, 31337, to, b"TZ01")
    with pytest.raises(AnchorProofError, match="unsupported transaction type"):
        decode_transaction(b"\x05" + legacy)
