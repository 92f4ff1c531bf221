"""Anchoring a batch root in an Ethereum transaction, and the record that proves it.

One transaction per batch: EIP-1559, value 0, sent to the operator's own address, calldata
``b"TZ01" || root || tree_size``. ``anchor_root`` waits until it is mined and has the requested
confirmations, checks that the block is still canonical, and returns the anchor.json record with
the offline proof (``chain_proof``) already verified against itself.

Nonces: the transaction takes ``eth_getTransactionCount(operator, "pending")``. That is only
correct when one sealer owns the operator key and one batch at a time: the caller holds the
sealing lock. Two sealers on one key would race for the same nonce and one would replace the other.

Everything goes through raw JSON-RPC (``provider.make_request``), so any EVM node works, and web3
is used for the provider and for signing only.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_account.typed_transactions.typed_transaction import TypedTransaction
from eth_hash.auto import keccak
from hexbytes import HexBytes
from rlp.exceptions import DecodingError
from web3 import Web3

from anchor.chain_proof import (
    calldata,
    fetch_offline_proof,
    iso_utc,
    parse_calldata,
    verify_offline_anchor,
)
from anchor.devnet import DEVNET_CHAIN_IDS
from anchor.rpc import (
    RPC_ATTEMPTS,
    RPC_BACKOFF_SECONDS,
    AnchorFailed,
    AnchorReorged,
    AnchorTimeout,
    RpcClient,
    RpcError,
)
from verifier.anchor_proof import ANCHOR_FORMAT

log = logging.getLogger(__name__)

#: The anchor record's sub-object of facts a node reported that no offline proof covers.
NODE_REPORTED = "node_reported"

#: Receipt polling starts fast (anvil mines on send) and slows to a public chain's pace.
POLL_START_SECONDS = 0.01
POLL_MAX_SECONDS = 2.0
#: Nodes reject a replacement unless both fees rise by at least 10 %; we raise them by 25 %.
REPLACEMENT_FEE_BUMP = 1.25
#: How many times a stuck transaction is replaced before giving up.
MAX_REPLACEMENTS = 1
#: Waiting for confirmations may take this long per block on top of ``timeout``.
SECONDS_PER_CONFIRMATION = 30.0
#: Used when a node does not implement eth_maxPriorityFeePerGas.
FALLBACK_PRIORITY_FEE_WEI = 10**9

_KNOWN_TX_ERRORS = ("already known", "known transaction", "already imported")
_NONCE_USED_ERRORS = ("nonce too low", "nonce is too low", "already used")
_UNDERPRICED_ERRORS = ("underpriced",)


@dataclass
class _Sent:
    tx_hash: str
    raw_tx: bytes
    max_fee: int
    priority_fee: int


def anchor_root(
    w3_or_rpc_url: Web3 | str,
    private_key: str,
    root: bytes,
    tree_size: int,
    *,
    confirmations: int = 1,
    chain_id: int | None = None,
    timeout: float = 60,
    attempts: int = RPC_ATTEMPTS,
    backoff: float = RPC_BACKOFF_SECONDS,
    on_signed: Callable[[str, str], None] | None = None,
) -> dict[str, Any]:
    """Anchor ``root`` of a tree of ``tree_size`` items and return the anchor.json record.

    ``chain_id``, when given, must be the chain the node serves (fail closed on a wrong RPC URL).
    If the transaction is not mined within ``timeout`` seconds it is replaced (same nonce, fees
    +25 %) up to ``MAX_REPLACEMENTS`` times, and whichever is mined wins. Once mined, it waits for
    ``confirmations`` blocks (on the devnets, chain ids 31337 and 31338, it mines them with ``evm_mine``, as
    anvil only mines on demand). ``on_signed(tx_hash, raw_tx_hex)`` is called before each
    broadcast, so a caller can persist what is about to be sent.

    Raises ValueError for a bad root or size, ChainUnavailable when the RPC cannot be reached,
    AnchorFailed when the node refuses, the chain is not ``chain_id``, the transaction reverted or
    its nonce was taken, AnchorTimeout when nothing was mined in time, and AnchorReorged when
    the block left the canonical chain before it was confirmed.
    """
    if confirmations < 1:
        raise ValueError("confirmations must be at least 1")
    data = calldata(root, tree_size)
    rpc = RpcClient(w3_or_rpc_url, attempts=attempts, backoff=backoff)
    node_chain_id = int(rpc("eth_chainId", []), 16)
    if chain_id is not None and node_chain_id != chain_id:
        raise AnchorFailed(f"the RPC serves chain {node_chain_id}, not the configured chain {chain_id}")
    account = Account.from_key(private_key)
    address = account.address
    nonce = int(rpc("eth_getTransactionCount", [address, "pending"]), 16)
    gas = int(rpc("eth_estimateGas", [{"from": address, "to": address, "value": "0x0", "data": "0x" + data.hex()}]), 16)
    latest = rpc("eth_getBlockByNumber", ["latest", False])
    base_fee = int(latest.get("baseFeePerGas") or "0x0", 16)
    try:
        priority_fee = int(rpc("eth_maxPriorityFeePerGas", []), 16)
    except RpcError:
        priority_fee = FALLBACK_PRIORITY_FEE_WEI
    # Twice the base fee survives six full blocks of +12.5 % before the tx stops being includable.
    max_fee = 2 * base_fee + priority_fee

    template = {
        "type": 2,
        "chainId": node_chain_id,
        "nonce": nonce,
        "to": address,
        "value": 0,
        "data": data,
        "gas": gas,
    }
    signer = _Signer(rpc, account, template, on_signed)
    first = signer.sign_and_send(max_fee, priority_fee)
    receipt, mined = _mine(rpc, [first], signer, address, nonce, timeout)
    return _finish(rpc, node_chain_id, nonce, mined.raw_tx, receipt, confirmations=confirmations, timeout=timeout)


def resume_anchor(
    w3_or_rpc_url: Web3 | str,
    raw_txs: str | Sequence[str],
    *,
    private_key: str | None = None,
    confirmations: int = 1,
    chain_id: int | None = None,
    timeout: float = 60,
    attempts: int = RPC_ATTEMPTS,
    backoff: float = RPC_BACKOFF_SECONDS,
    on_signed: Callable[[str, str], None] | None = None,
) -> dict[str, Any]:
    """Finish an anchor whose signed transaction(s) were saved (via ``on_signed``) before a restart.

    ``raw_txs`` is the 0x-hex signed transaction, or all of them when replacements were sent (same
    sender and nonce). Each is re-broadcast (harmless if the node has it or one is mined), then it
    waits like ``anchor_root`` and returns the same record. With ``private_key`` a stuck
    transaction is replaced as in ``anchor_root``; without, it is only waited for.

    Raises ValueError when a transaction is not an EIP-1559 anchor, they do not share sender and
    nonce, or they are not signed by ``private_key``; otherwise what ``anchor_root`` raises.
    AnchorFailed with "nonce ... used by another transaction" means none can ever be mined:
    anchor the batch again.
    """
    if confirmations < 1:
        raise ValueError("confirmations must be at least 1")
    saved = [raw_txs] if isinstance(raw_txs, str) else list(raw_txs)
    if not saved:
        raise ValueError("no saved transaction to resume")
    sent: list[_Sent] = []
    decoded: list[dict[str, Any]] = []
    for raw_hex in saved:
        raw = bytes.fromhex(raw_hex.removeprefix("0x"))
        try:
            if raw[:1] != b"\x02":
                raise ValueError("not a type 2 transaction")
            tx = TypedTransaction.from_bytes(HexBytes(raw)).as_dict()
        except (ValueError, TypeError, KeyError, DecodingError) as exc:
            raise ValueError(f"raw_tx is not an EIP-1559 transaction: {exc}") from exc
        parse_calldata(bytes(tx["data"]))  # refuse to "resume" anything that is not an anchor
        tx["from"] = Account.recover_transaction(raw)
        decoded.append(tx)
        sent.append(_Sent("0x" + keccak(raw).hex(), raw, tx["maxFeePerGas"], tx["maxPriorityFeePerGas"]))
    tx = max(decoded, key=lambda t: int(t["maxPriorityFeePerGas"]))
    if any((t["from"], t["nonce"], t["chainId"]) != (tx["from"], tx["nonce"], tx["chainId"]) for t in decoded):
        raise ValueError("the saved transactions do not share one sender, nonce and chain")
    account = None
    if private_key is not None:
        account = Account.from_key(private_key)
        if account.address != tx["from"]:
            raise ValueError(f"raw_tx was signed by {tx['from']}, not by the given key ({account.address})")
    rpc = RpcClient(w3_or_rpc_url, attempts=attempts, backoff=backoff)
    node_chain_id = int(rpc("eth_chainId", []), 16)
    if node_chain_id != tx["chainId"] or (chain_id is not None and chain_id != tx["chainId"]):
        raise AnchorFailed(f"raw_tx is for chain {tx['chainId']}; the RPC serves {node_chain_id}")
    # Highest fee last: that is the one a replacement must outbid.
    sent.sort(key=lambda s: s.priority_fee)
    for candidate in sent:
        _broadcast(rpc, candidate.raw_tx, resent=True)
    signer = None
    if account is not None:
        template = {key: tx[key] for key in ("type", "chainId", "nonce", "to", "value", "data", "gas")}
        signer = _Signer(rpc, account, template, on_signed)
    receipt, mined = _mine(rpc, sent, signer, tx["from"], tx["nonce"], timeout)
    return _finish(rpc, node_chain_id, tx["nonce"], mined.raw_tx, receipt, confirmations=confirmations, timeout=timeout)


class _Signer:
    """Signs the anchor transaction at given fees, reports it, then broadcasts it."""

    def __init__(
        self,
        rpc: RpcClient,
        account: Any,
        template: dict[str, Any],
        on_signed: Callable[[str, str], None] | None,
    ) -> None:
        self.rpc, self.account, self.template, self.on_signed = rpc, account, template, on_signed

    def sign_and_send(self, max_fee: int, priority_fee: int) -> _Sent:
        tx = dict(self.template, maxFeePerGas=max_fee, maxPriorityFeePerGas=priority_fee)
        raw = bytes(self.account.sign_transaction(tx).raw_transaction)
        sent = _Sent("0x" + keccak(raw).hex(), raw, max_fee, priority_fee)
        if self.on_signed is not None:
            # Before the broadcast: whoever persists this can re-send the very same tx after a crash.
            self.on_signed(sent.tx_hash, "0x" + raw.hex())
        _broadcast(self.rpc, raw)
        return sent


def _mine(
    rpc: RpcClient, sent: list[_Sent], signer: _Signer | None, address: str, nonce: int, timeout: float
) -> tuple[dict[str, Any], _Sent]:
    """Wait for one of ``sent`` to be mined, replacing a stuck one when a signer is given.

    Returns the receipt and which transaction it is for. Raises AnchorTimeout or AnchorFailed.
    """
    replacements = MAX_REPLACEMENTS if signer is not None else 0
    for window in range(replacements + 1):
        receipt = _wait_for_receipt(rpc, sent, address, nonce, timeout)
        if receipt is not None:
            mined = next(s for s in sent if s.tx_hash == str(receipt["transactionHash"]).lower())
            return receipt, mined
        if signer is not None and window < replacements:
            last = sent[-1]
            bumped_tip = max(int(last.priority_fee * REPLACEMENT_FEE_BUMP), last.priority_fee + 1)
            bumped_max = max(int(last.max_fee * REPLACEMENT_FEE_BUMP), last.max_fee + 1, bumped_tip)
            log.warning("anchor %s not mined in %.1f s; replacing it with higher fees", last.tx_hash, timeout)
            try:
                sent.append(signer.sign_and_send(bumped_max, bumped_tip))
            except AnchorFailed as exc:
                # The original may have been mined in the meantime; the next wait finds out.
                log.warning("replacement of %s not accepted: %s", last.tx_hash, exc)
    hashes = [s.tx_hash for s in sent]
    raise AnchorTimeout(f"anchor not mined after {len(sent)} transaction(s): {', '.join(hashes)}", hashes)


def check_anchor(
    w3_or_rpc_url: Web3 | str,
    record: dict[str, Any],
    *,
    attempts: int = RPC_ATTEMPTS,
    backoff: float = RPC_BACKOFF_SECONDS,
) -> int:
    """Check online that the anchor in ``record`` is still where it was, and return its confirmations.

    Raises AnchorReorged when its block is no longer canonical (or the tx is gone), AnchorFailed
    when the node serves another chain, and ChainUnavailable when it cannot be reached.
    """
    rpc = RpcClient(w3_or_rpc_url, attempts=attempts, backoff=backoff)
    node_chain_id = int(rpc("eth_chainId", []), 16)
    if node_chain_id != record["chain_id"]:
        raise AnchorFailed(f"the RPC serves chain {node_chain_id}, the anchor is on chain {record['chain_id']}")
    return _confirmations(rpc, record["tx_hash"], record["block_number"], record["block_hash"])


def _broadcast(rpc: RpcClient, raw: bytes, *, resent: bool = False) -> None:
    try:
        rpc("eth_sendRawTransaction", ["0x" + raw.hex()])
    except RpcError as exc:
        text = exc.message.lower()
        if any(marker in text for marker in _KNOWN_TX_ERRORS):
            return  # a re-broadcast of what the node already has
        if resent and any(marker in text for marker in _NONCE_USED_ERRORS + _UNDERPRICED_ERRORS):
            return  # mined already, outbid by our own replacement, or its nonce was taken: waiting tells
        raise AnchorFailed(f"the node refused the anchor transaction: {exc.message}") from exc


def _wait_for_receipt(rpc: RpcClient, sent: list[_Sent], address: str, nonce: int,
                      timeout: float) -> dict[str, Any] | None:
    """The receipt of whichever of ``sent`` is mined first, or None after ``timeout`` seconds.

    Raises AnchorFailed when the nonce was used by a transaction that is none of ours.
    """
    deadline = time.monotonic() + timeout
    delay = POLL_START_SECONDS
    while True:
        receipt = _first_receipt(rpc, sent)
        if receipt is not None:
            return receipt
        if int(rpc("eth_getTransactionCount", [address, "latest"]), 16) > nonce:
            # Our nonce is spent. If it was spent by one of ours, its receipt shows now.
            receipt = _first_receipt(rpc, sent)
            if receipt is not None:
                return receipt
            raise AnchorFailed(
                f"nonce {nonce} of {address} was used by another transaction (is a second sealer running?)"
            )
        if time.monotonic() >= deadline:
            return None
        time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 2, POLL_MAX_SECONDS)


def _first_receipt(rpc: RpcClient, sent: list[_Sent]) -> dict[str, Any] | None:
    receipts = (rpc("eth_getTransactionReceipt", [candidate.tx_hash]) for candidate in sent)
    return next((dict(r) for r in receipts if r is not None and r.get("blockHash")), None)


def _finish(
    rpc: RpcClient,
    chain_id: int,
    nonce: int,
    raw_tx: bytes,
    receipt: dict[str, Any],
    *,
    confirmations: int,
    timeout: float,
) -> dict[str, Any]:
    tx_hash = str(receipt["transactionHash"]).lower()
    if int(receipt["status"], 16) != 1:
        raise AnchorFailed(f"anchor transaction {tx_hash} failed (receipt status 0)")
    block_number = int(receipt["blockNumber"], 16)
    block_hash = str(receipt["blockHash"]).lower()

    confirm_timeout = timeout + confirmations * SECONDS_PER_CONFIRMATION
    _await_confirmations(rpc, chain_id, block_number, confirmations, confirm_timeout)

    proof = fetch_offline_proof(rpc, block_hash, tx_hash, rpc_many=rpc.many)
    block = rpc("eth_getBlockByHash", [block_hash, False])
    block_time = int(block["timestamp"], 16)
    tx_index = int(receipt["transactionIndex"], 16)
    if proof["tx_index"] != tx_index:
        raise AnchorFailed(f"receipt says index {tx_index}, the block has the tx at {proof['tx_index']}")
    record: dict[str, Any] = {
        "format": ANCHOR_FORMAT,
        "chain_id": chain_id,
        "tx_hash": tx_hash,
        "raw_tx": "0x" + raw_tx.hex(),
        "to": Web3.to_checksum_address(receipt["to"]),
        "nonce": nonce,
        "block_number": block_number,
        "block_hash": block_hash,
        "block_time": block_time,
        "block_time_utc": iso_utc(block_time),
        "tx_index": tx_index,
        **proof,
    }
    # The record is what a court checks offline: make sure it verifies before anyone relies on it.
    verify_offline_anchor(record)
    # What only the node says (no offline proof covers it) stays out of the verified fields;
    # proof/anchor.json leaves it out altogether.
    record[NODE_REPORTED] = {
        "from": Web3.to_checksum_address(receipt["from"]),
        "receipt_status": 1,
        "gas_used": int(receipt["gasUsed"], 16),
        "effective_gas_price": int(receipt["effectiveGasPrice"], 16),
    }
    # Last, so that the block is checked canonical at the moment we hand the record over.
    count = _confirmations(rpc, tx_hash, block_number, block_hash)
    if count < confirmations:
        # The head moved back under us but kept our block (a shallow reorg above it): wait again.
        _await_confirmations(rpc, chain_id, block_number, confirmations, confirm_timeout)
        count = _confirmations(rpc, tx_hash, block_number, block_hash)
    record[NODE_REPORTED]["confirmations"] = count
    return record


def _await_confirmations(rpc: RpcClient, chain_id: int, block_number: int, confirmations: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    delay = POLL_START_SECONDS
    while True:
        head = int(rpc("eth_blockNumber", []), 16)
        missing = confirmations - (head - block_number + 1)
        if missing <= 0:
            return
        if chain_id in DEVNET_CHAIN_IDS:
            # anvil mines a block per transaction and none otherwise: confirmations never come by
            # themselves. evm_mine is an anvil (and Hardhat) method; real chains never see it.
            for _ in range(missing):
                rpc("evm_mine", [])
            continue
        if time.monotonic() >= deadline:
            raise AnchorTimeout(
                f"block {block_number} has {head - block_number + 1} of {confirmations} confirmations "
                f"after {timeout:.0f} s",
                [],
            )
        time.sleep(delay)
        delay = min(delay * 2, POLL_MAX_SECONDS)


def _confirmations(rpc: RpcClient, tx_hash: str, block_number: int, block_hash: str) -> int:
    """Confirmations of ``tx_hash`` in ``block_hash``; AnchorReorged if that is no longer canonical."""
    receipt = rpc("eth_getTransactionReceipt", [tx_hash])
    found = str(receipt["blockHash"]).lower() if receipt and receipt.get("blockHash") else None
    if found != block_hash.lower():
        raise AnchorReorged(tx_hash, block_number, block_hash, found)
    canonical = rpc("eth_getBlockByNumber", [hex(block_number), False])
    found = str(canonical["hash"]).lower() if canonical else None
    if found != block_hash.lower():
        raise AnchorReorged(tx_hash, block_number, block_hash, found)
    head = int(rpc("eth_blockNumber", []), 16)
    return head - block_number + 1


def verifiable_part(record: dict[str, Any]) -> dict[str, Any]:
    """The anchor record as proof/anchor.json carries it: only what verify_offline_anchor checks."""
    return {key: value for key, value in record.items() if key != NODE_REPORTED}


def operator_address(private_key: str) -> str:
    """Return the checksummed address of ``private_key`` (where anchors are sent from and to)."""
    return str(Account.from_key(private_key).address)
