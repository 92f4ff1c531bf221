"""Anchoring on a real anvil, read back with plain JSON-RPC."""

from __future__ import annotations

import hashlib
import socket
import threading
import time
from typing import Any

import pytest
from eth_account import Account
from eth_account.typed_transactions.typed_transaction import TypedTransaction
from hexbytes import HexBytes

from anchor.chain_proof import calldata, verify_offline_anchor
from anchor.devnet import DEV_OPERATOR_ADDRESS, DEV_OPERATOR_KEY, DEVNET_CHAIN_ID, Devnet
from anchor.ethereum import anchor_root, check_anchor, resume_anchor, verifiable_part
from anchor.rpc import AnchorFailed, AnchorReorged, ChainUnavailable, connect
from tests.anchor.conftest import rpc

ROOT = hashlib.sha256(b"batch root").digest()


def test_anchor_transaction_carries_the_root(devnet: Devnet) -> None:
    record = anchor_root(devnet.rpc_url, DEV_OPERATOR_KEY, ROOT, 1234)
    tx = rpc(devnet.rpc_url, "eth_getTransactionByHash", record["tx_hash"])
    assert tx["input"] == "0x" + (b"TZ01" + ROOT + (1234).to_bytes(8, "big")).hex()
    assert tx["from"].lower() == tx["to"].lower() == DEV_OPERATOR_ADDRESS.lower()
    assert int(tx["value"], 16) == 0
    assert tx["type"] == "0x2"
    assert tx["blockHash"] == record["block_hash"]
    assert int(tx["blockNumber"], 16) == record["block_number"]
    assert int(tx["nonce"], 16) == record["nonce"]
    assert int(tx["transactionIndex"], 16) == record["tx_index"]
    raw = rpc(devnet.rpc_url, "eth_getRawTransactionByHash", record["tx_hash"])
    assert raw == record["raw_tx"]
    block = rpc(devnet.rpc_url, "eth_getBlockByHash", record["block_hash"], False)
    assert int(block["timestamp"], 16) == record["block_time"]


def test_anchor_record_fields(devnet: Devnet) -> None:
    record = anchor_root(connect(devnet.rpc_url), DEV_OPERATOR_KEY, ROOT, 1, chain_id=DEVNET_CHAIN_ID)
    assert record["chain_id"] == DEVNET_CHAIN_ID
    assert record["tx_hash"].startswith("0x") and len(record["tx_hash"]) == 66
    assert record["block_hash"].startswith("0x") and len(record["block_hash"]) == 66
    assert record["raw_tx"].startswith("0x02")
    assert record["node_reported"]["from"] == record["to"] == DEV_OPERATOR_ADDRESS
    assert isinstance(record["block_time"], int)
    assert record["block_time_utc"].endswith("Z") and record["block_time_utc"][:2] == "20"
    assert record["node_reported"]["receipt_status"] == 1
    assert record["node_reported"]["confirmations"] >= 1
    # 21,000 + EIP-7623 floor for 44 bytes of calldata: 37 non-zero and 7 zero bytes -> 22,550 gas.
    assert 21_000 < record["node_reported"]["gas_used"] < 25_000
    assert record["node_reported"]["effective_gas_price"] > 0
    assert verify_offline_anchor(verifiable_part(record)) == (ROOT, 1)


def test_confirmations_are_mined_on_the_devnet(devnet: Devnet) -> None:
    record = anchor_root(devnet.rpc_url, DEV_OPERATOR_KEY, ROOT, 5, confirmations=3)
    assert record["node_reported"]["confirmations"] >= 3
    assert int(rpc(devnet.rpc_url, "eth_blockNumber"), 16) >= record["block_number"] + 2
    assert check_anchor(devnet.rpc_url, record) >= 3


def test_wrong_chain_id_fails_closed(devnet: Devnet) -> None:
    with pytest.raises(AnchorFailed, match="not the configured chain 11155111"):
        anchor_root(devnet.rpc_url, DEV_OPERATOR_KEY, ROOT, 1, chain_id=11155111)


def test_bad_input_is_refused_before_any_rpc() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        anchor_root("http://127.0.0.1:9", DEV_OPERATOR_KEY, ROOT[:31], 1)
    with pytest.raises(ValueError, match="tree size"):
        anchor_root("http://127.0.0.1:9", DEV_OPERATOR_KEY, ROOT, 0)


def test_closed_port_is_chain_unavailable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.monotonic()
    with pytest.raises(ChainUnavailable, match="after 3 attempt"):
        anchor_root(f"http://127.0.0.1:{port}", DEV_OPERATOR_KEY, ROOT, 1, attempts=3, backoff=0.01)
    assert time.monotonic() - started < 3


def test_on_signed_sees_the_transaction_before_it_is_sent(devnet: Devnet) -> None:
    seen: list[tuple[str, str, Any]] = []

    def remember(tx_hash: str, raw_tx: str) -> None:
        seen.append((tx_hash, raw_tx, rpc(devnet.rpc_url, "eth_getTransactionByHash", tx_hash)))

    record = anchor_root(devnet.rpc_url, DEV_OPERATOR_KEY, ROOT, 2, on_signed=remember)
    assert seen == [(record["tx_hash"], record["raw_tx"], None)]  # unknown to the node when reported


def _signed_anchor(rpc_url: str, tree_size: int, tip: int = 10**9) -> tuple[str, str]:
    """A signed, never-broadcast anchor tx: what a sealer saved just before it crashed."""
    account = Account.from_key(DEV_OPERATOR_KEY)
    nonce = int(rpc(rpc_url, "eth_getTransactionCount", account.address, "pending"), 16)
    signed = account.sign_transaction(
        {
            "type": 2,
            "chainId": DEVNET_CHAIN_ID,
            "nonce": nonce,
            "to": account.address,
            "value": 0,
            "data": calldata(ROOT, tree_size),
            "gas": 30_000,
            "maxFeePerGas": 100 * tip,
            "maxPriorityFeePerGas": tip,
        }
    )
    return "0x" + signed.hash.hex(), "0x" + signed.raw_transaction.hex()


def test_resume_sends_a_saved_transaction_once(devnet: Devnet) -> None:
    tx_hash, raw_tx = _signed_anchor(devnet.rpc_url, 77)
    record = resume_anchor(devnet.rpc_url, raw_tx, private_key=DEV_OPERATOR_KEY)
    assert record["tx_hash"] == tx_hash
    assert verify_offline_anchor(verifiable_part(record)) == (ROOT, 77)
    # A second restart after it was mined finds the same anchor instead of sending another.
    again = resume_anchor(devnet.rpc_url, raw_tx)
    assert (again["tx_hash"], again["block_hash"]) == (tx_hash, record["block_hash"])


def test_resume_after_a_replacement_waits_for_either(private_devnet: Devnet) -> None:
    """A crash after the replacement was saved: both versions are re-sent, the pricier one wins."""
    url = private_devnet.rpc_url
    low = _signed_anchor(url, 5, tip=10**9)
    high = _signed_anchor(url, 5, tip=2 * 10**9)
    rpc(url, "evm_setAutomine", False)
    result: dict[str, Any] = {}
    worker = threading.Thread(target=lambda: result.update(record=resume_anchor(url, [low[1], high[1]], timeout=10)))
    worker.start()
    deadline = time.monotonic() + 5
    while rpc(url, "eth_getTransactionByHash", high[0]) is None and time.monotonic() < deadline:
        time.sleep(0.02)
    rpc(url, "evm_mine")
    worker.join(10)
    assert result["record"]["tx_hash"] == high[0]
    assert verify_offline_anchor(verifiable_part(result["record"])) == (ROOT, 5)


def test_resume_refuses_what_is_not_an_anchor(devnet: Devnet) -> None:
    with pytest.raises(ValueError, match="EIP-1559"):
        resume_anchor(devnet.rpc_url, "0xf86c")
    other = Account.create()
    _, raw_tx = _signed_anchor(devnet.rpc_url, 1)
    with pytest.raises(ValueError, match="signed by"):
        resume_anchor(devnet.rpc_url, raw_tx, private_key=other.key.hex())
    stranger = other.sign_transaction(
        {"type": 2, "chainId": DEVNET_CHAIN_ID, "nonce": 0, "to": other.address, "value": 0, "gas": 30_000,
         "data": calldata(ROOT, 1), "maxFeePerGas": 10**11, "maxPriorityFeePerGas": 10**9}
    )  # fmt: skip
    with pytest.raises(ValueError, match="share one sender"):
        resume_anchor(devnet.rpc_url, [raw_tx, "0x" + stranger.raw_transaction.hex()])


def test_stuck_transaction_is_replaced(private_devnet: Devnet) -> None:
    url = private_devnet.rpc_url
    rpc(url, "evm_setAutomine", False)
    signed: list[tuple[str, str]] = []
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["record"] = anchor_root(
                url, DEV_OPERATOR_KEY, ROOT, 3, timeout=0.3, on_signed=lambda h, r: signed.append((h, r))
            )
        except Exception as exc:
            result["error"] = exc

    worker = threading.Thread(target=run)
    worker.start()
    deadline = time.monotonic() + 5
    while len(signed) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(signed) == 2, "no replacement was sent"
    time.sleep(0.05)  # let the replacement reach the pool
    rpc(url, "evm_mine")
    worker.join(10)
    assert "error" not in result, result.get("error")
    record = result["record"]
    assert record["tx_hash"] == signed[1][0]  # the replacement was mined ...
    assert rpc(url, "eth_getTransactionByHash", signed[0][0]) is None  # ... and the original is gone
    first, second = (TypedTransaction.from_bytes(HexBytes(raw)).as_dict() for _, raw in signed)
    assert second["nonce"] == first["nonce"]
    assert second["maxPriorityFeePerGas"] >= first["maxPriorityFeePerGas"] * 1.1
    assert second["maxFeePerGas"] >= first["maxFeePerGas"] * 1.1
    assert verify_offline_anchor(verifiable_part(record)) == (ROOT, 3)


def test_reorg_below_confirmation_depth_is_detected(private_devnet: Devnet) -> None:
    url = private_devnet.rpc_url
    record = anchor_root(url, DEV_OPERATOR_KEY, ROOT, 9)
    assert check_anchor(url, record) == 1
    rpc(url, "anvil_reorg", 1, [])  # replace the anchor block with an empty one
    with pytest.raises(AnchorReorged, match="reorganised") as info:
        check_anchor(url, record)
    assert info.value.block_number == record["block_number"]
    assert info.value.expected_block_hash == record["block_hash"]
