"""Building the offline anchor proof from a node: the edge that talks to an RPC.

The proof's format and its pure verification live in ``verifier.anchor_proof``, so that opposing
counsel's verifier checks exactly what this module builds. This module fetches the anchor block and
every raw transaction in it, rebuilds the transaction trie and the header RLP, and checks both
against the hashes the node claims before handing them over.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import rlp
from eth_hash.auto import keccak
from trie.hexary import HexaryTrie

from verifier.anchor_proof import (
    HASH_BYTES,
    HEADER_FIELDS,
    HEADER_INT_FIELDS,
    AnchorProofError,
    ChainDataError,
    _hex,
    calldata,
    decode_transaction,
    iso_utc,
    parse_calldata,
    verify_offline_anchor,
)

__all__ = [
    "AnchorProofError",
    "ChainDataError",
    "calldata",
    "decode_transaction",
    "fetch_offline_proof",
    "header_rlp",
    "iso_utc",
    "parse_calldata",
    "transactions_trie",
    "verify_offline_anchor",
]

#: How many raw transactions to ask for in one JSON-RPC batch.
RAW_TX_BATCH_SIZE = 50

Rpc = Callable[[str, list[Any]], Any]
RpcMany = Callable[[list[tuple[str, list[Any]]]], list[Any]]


def header_rlp(block: Mapping[str, Any]) -> bytes:
    """Return the RLP header of a JSON-RPC block (hex-string fields), in DESIGN.md field order.

    Only fields present in the block are encoded, which leaves out those of forks it predates.
    Raises ChainDataError when a field is malformed or a later field exists without an earlier one.
    """
    items: list[int | bytes] = []
    for position, name in enumerate(HEADER_FIELDS):
        value = block.get(name)
        if value is None:
            if any(block.get(later) is not None for later in HEADER_FIELDS[position + 1 :]):
                raise ChainDataError(f"block has fields after {name} but not {name}")
            break
        if not isinstance(value, str) or not value.startswith("0x"):
            raise ChainDataError(f"block field {name} is not 0x-hex: {value!r}")
        try:
            items.append(int(value, 16) if name in HEADER_INT_FIELDS else bytes.fromhex(value[2:]))
        except ValueError as exc:
            raise ChainDataError(f"block field {name} is not hex: {value!r}") from exc
    return bytes(rlp.encode(items))


def transactions_trie(raw_txs: Sequence[bytes]) -> HexaryTrie:
    """Return the block's transaction trie: key rlp(index), value the raw (typed-envelope) tx."""
    trie = HexaryTrie({})
    for index, raw in enumerate(raw_txs):
        trie[rlp.encode(index)] = raw
    return trie


def fetch_offline_proof(rpc: Rpc, block_hash: str, tx_hash: str, *, rpc_many: RpcMany | None = None) -> dict[str, Any]:
    """Fetch the anchor block and build the offline proof of ``tx_hash`` in it.

    ``rpc(method, params)`` returns a JSON-RPC result; ``rpc_many`` (optional) answers a list of
    calls at once (a JSON-RPC batch). Returns the anchor.json fields ``header_rlp`` (0x hex),
    ``tx_proof`` (0x-hex RLP nodes, root first), ``tx_index`` and ``transactions_root``.

    Raises ChainDataError when the block or a transaction is missing, or when what the node sent
    does not hash to what it claims (header fields, trie root, a transaction hash).
    """
    block = rpc("eth_getBlockByHash", [block_hash, False])
    if not isinstance(block, dict):
        raise ChainDataError(f"block {block_hash} not found")
    hashes = [str(tx["hash"] if isinstance(tx, dict) else tx).lower() for tx in block.get("transactions", [])]
    try:
        index = hashes.index(tx_hash.lower())
    except ValueError:
        raise ChainDataError(f"transaction {tx_hash} is not in block {block_hash}") from None

    calls = [("eth_getRawTransactionByHash", [h]) for h in hashes]
    if rpc_many is not None:
        answers = []
        for start in range(0, len(calls), RAW_TX_BATCH_SIZE):
            answers.extend(rpc_many(calls[start : start + RAW_TX_BATCH_SIZE]))
    else:
        answers = [rpc(method, params) for method, params in calls]
    raw_txs = []
    for expected_hash, answer in zip(hashes, answers, strict=True):
        if not isinstance(answer, str) or not answer.startswith("0x"):
            raise ChainDataError(f"no raw transaction for {expected_hash}")
        raw = bytes.fromhex(answer[2:])
        if "0x" + keccak(raw).hex() != expected_hash:
            raise ChainDataError(f"raw transaction for {expected_hash} hashes to 0x{keccak(raw).hex()}")
        raw_txs.append(raw)

    trie = transactions_trie(raw_txs)
    transactions_root = _hex_field(block, "transactionsRoot", HASH_BYTES)
    if trie.root_hash != transactions_root:
        raise ChainDataError(
            f"transaction trie root 0x{trie.root_hash.hex()} differs from the header's 0x{transactions_root.hex()}"
        )
    header = header_rlp(block)
    if keccak(header) != _hex_field(block, "hash", HASH_BYTES):
        raise ChainDataError(
            "the header fields do not hash to the block hash: this chain's header has fields that "
            "DESIGN.md's list does not cover"
        )
    proof = trie.get_proof(rlp.encode(index))  # type: ignore[no-untyped-call]  # trie is untyped here
    return {
        "header_rlp": "0x" + header.hex(),
        "tx_proof": ["0x" + bytes(rlp.encode(node)).hex() for node in proof],
        "tx_index": index,
        "transactions_root": "0x" + transactions_root.hex(),
    }


def _hex_field(block: Mapping[str, Any], key: str, size: int) -> bytes:
    try:
        return _hex(block.get(key), f"block {key}", size=size)
    except AnchorProofError as exc:
        raise ChainDataError(str(exc)) from exc
