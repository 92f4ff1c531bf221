"""Offline anchor proof, verified: a block commits to our anchor transaction, with no network.

DESIGN.md "Offline anchor proof". The proof ties three hashes together:

    block_hash = keccak(header_rlp)                      (the header is the preimage of the hash)
    header.transactionsRoot --MPT proof at rlp(index)--> raw_tx
    tx_hash = keccak256(raw_tx),  raw_tx.data = "TZ01" || root || tree_size

What it cannot show offline is that the block is on the canonical chain with enough blocks on top:
that needs a node (H5 online, through ``verifier.chain_source``).

Boundary: everything here is a pure function of bytes (rlp, trie, eth_hash; no web3, no network).
A change here can turn a valid proof invalid or, worse, an invalid one valid: change it with care,
and only with the tests in tests/verifier/test_anchor_proof.py and tests/anchor/.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from verifier.errors import HashMismatchError, VerificationError
from verifier.ethereum_trie import RLPError, rlp_decode, rlp_encode_uint, trie_get
from verifier.keccak import keccak256

ANCHOR_FORMAT = "tiezheng-anchor/1"
#: What proof/anchor.json may hold: each of these is checked by verify_offline_anchor.
ANCHOR_FIELDS = frozenset({
    "format", "chain_id", "tx_hash", "raw_tx", "to", "nonce", "block_number", "block_hash", "block_time",
    "block_time_utc", "tx_index", "header_rlp", "tx_proof", "transactions_root",
})
#: calldata = MAGIC (4) || Merkle root (32) || tree size (8, big-endian).
ANCHOR_MAGIC = b"TZ01"
ROOT_BYTES = 32
TREE_SIZE_BYTES = 8
CALLDATA_BYTES = len(ANCHOR_MAGIC) + ROOT_BYTES + TREE_SIZE_BYTES
HASH_BYTES = 32
ADDRESS_BYTES = 20

#: The execution-layer header fields in RLP order (DESIGN.md). Forks append fields; a block from
#: before a fork simply lacks the later ones.
HEADER_FIELDS = (
    "parentHash", "sha3Uncles", "miner", "stateRoot", "transactionsRoot", "receiptsRoot",
    "logsBloom", "difficulty", "number", "gasLimit", "gasUsed", "timestamp", "extraData",
    "mixHash", "nonce", "baseFeePerGas", "withdrawalsRoot", "blobGasUsed", "excessBlobGas",
    "parentBeaconBlockRoot", "requestsHash",
)  # fmt: skip
#: Header fields that RLP-encode as integers; all others are byte strings (``nonce`` included).
HEADER_INT_FIELDS = frozenset(
    {"difficulty", "number", "gasLimit", "gasUsed", "timestamp", "baseFeePerGas", "blobGasUsed", "excessBlobGas"}
)
#: Positions in the decoded header list.
_TX_ROOT_AT, _NUMBER_AT, _TIMESTAMP_AT = 4, 8, 11
#: Every header since Frontier has at least the 15 pre-London fields.
MIN_HEADER_FIELDS = 15

#: Mainnet headers are ~600 bytes; other EVM chains put more in extraData.
MAX_HEADER_BYTES = 4096
#: geth's txpool limit on a transaction's size.
MAX_RAW_TX_BYTES = 128 * 1024
#: A transaction trie key is rlp(index) of at most a few bytes, so a real path is short.
MAX_PROOF_NODES = 16
#: A leaf node embeds the whole raw transaction.
MAX_PROOF_NODE_BYTES = MAX_RAW_TX_BYTES + 1024
#: Far above the transactions any block can hold at 21,000 gas each.
MAX_TX_INDEX = 1 << 20

#: For each typed-transaction envelope: field count and the positions of chainId, to and data.
_TYPED_TX_LAYOUT: dict[int, tuple[int, int, int]] = {
    0x01: (11, 4, 6),  # EIP-2930: chainId, nonce, gasPrice, gas, to, value, data, accessList, y, r, s
    0x02: (12, 5, 7),  # EIP-1559: chainId, nonce, tip, maxFee, gas, to, value, data, accessList, y, r, s
    0x03: (14, 5, 7),  # EIP-4844: ... data, accessList, maxFeePerBlobGas, blobHashes, y, r, s
    0x04: (13, 5, 7),  # EIP-7702: ... data, accessList, authorizationList, y, r, s
}
_LEGACY_TX_FIELDS = 9  # nonce, gasPrice, gas, to, value, data, v, r, s
_EIP155_V_OFFSET = 35


class AnchorProofError(VerificationError, ValueError):
    """An anchor record or its offline proof is malformed, or does not hold."""


class AnchorHashMismatch(HashMismatchError, AnchorProofError):
    """A hash in the anchor proof differs from the one it must equal."""


class ChainDataError(AnchorProofError):
    """A node answered with data that cannot prove the anchor (missing, inconsistent, unsupported)."""


# -- calldata ----------------------------------------------------------------------------------------


def calldata(root: bytes, tree_size: int) -> bytes:
    """Return the anchor calldata ``b"TZ01" || root || tree_size (8 bytes, big-endian)``.

    Raises ValueError for a root that is not 32 bytes or a size outside 1..2**64-1.
    """
    if len(root) != ROOT_BYTES:
        raise ValueError(f"a Merkle root is {ROOT_BYTES} bytes, not {len(root)}")
    if not 1 <= tree_size < 1 << (8 * TREE_SIZE_BYTES):
        raise ValueError(f"tree size {tree_size} outside 1..2**64-1")
    return ANCHOR_MAGIC + root + tree_size.to_bytes(TREE_SIZE_BYTES, "big")


def parse_calldata(data: bytes) -> tuple[bytes, int]:
    """Return ``(root, tree_size)`` from anchor calldata. Raises AnchorProofError if it is not one."""
    if len(data) != CALLDATA_BYTES:
        raise AnchorProofError(f"anchor calldata is {CALLDATA_BYTES} bytes, got {len(data)}")
    if data[: len(ANCHOR_MAGIC)] != ANCHOR_MAGIC:
        raise AnchorProofError(f"anchor calldata must start with {ANCHOR_MAGIC!r}, got {data[:4]!r}")
    root = data[len(ANCHOR_MAGIC) : len(ANCHOR_MAGIC) + ROOT_BYTES]
    tree_size = int.from_bytes(data[len(ANCHOR_MAGIC) + ROOT_BYTES :], "big")
    if tree_size < 1:
        raise AnchorProofError("anchor calldata names an empty tree")
    return root, tree_size


# -- transactions ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DecodedTransaction:
    """The fields of a signed transaction that an anchor check needs."""

    tx_type: int
    chain_id: int | None  # None only for a pre-EIP-155 legacy transaction
    nonce: int
    to: bytes | None  # None for contract creation
    data: bytes


def decode_transaction(raw_tx: bytes) -> DecodedTransaction:
    """Decode a raw signed transaction (legacy, or typed envelope ``type || rlp([...])``).

    Raises AnchorProofError for malformed or unsupported encodings.
    """
    if not raw_tx:
        raise AnchorProofError("empty raw transaction")
    if raw_tx[0] >= 0xC0:
        fields = _rlp_list(raw_tx, "legacy transaction")
        if len(fields) != _LEGACY_TX_FIELDS:
            raise AnchorProofError(f"a legacy transaction has {_LEGACY_TX_FIELDS} fields, got {len(fields)}")
        v = _rlp_int(fields[6], "v")
        chain_id = (v - _EIP155_V_OFFSET) // 2 if v >= _EIP155_V_OFFSET else None
        return DecodedTransaction(0, chain_id, _rlp_int(fields[0], "nonce"), _to_field(fields[3]),
                                  _bytes_field(fields[5], "data"))
    layout = _TYPED_TX_LAYOUT.get(raw_tx[0])
    if layout is None:
        raise AnchorProofError(f"unsupported transaction type 0x{raw_tx[0]:02x}")
    count, to_at, data_at = layout
    fields = _rlp_list(raw_tx[1:], f"type 0x{raw_tx[0]:02x} transaction")
    if len(fields) != count:
        raise AnchorProofError(f"a type 0x{raw_tx[0]:02x} transaction has {count} fields, got {len(fields)}")
    return DecodedTransaction(raw_tx[0], _rlp_int(fields[0], "chainId"), _rlp_int(fields[1], "nonce"),
                              _to_field(fields[to_at]), _bytes_field(fields[data_at], "data"))


# -- verifying the proof (pure) ----------------------------------------------------------------------


def verify_offline_anchor(anchor: Mapping[str, Any]) -> tuple[bytes, int]:
    """Check an anchor record's offline proof and return the anchored ``(root, tree_size)``.

    The record needs ``block_hash``, ``header_rlp``, ``block_number``, ``block_time``, ``tx_index``,
    ``tx_proof``, ``raw_tx``, ``tx_hash`` and ``chain_id``; ``transactions_root``, ``to``, ``nonce``
    and ``block_time_utc`` are checked when present. Any other field is refused: every byte of an
    anchor.json must be something this function checked. The caller compares the result with
    proof.json.

    Raises AnchorProofError (a ValueError) naming the first check that fails. This proves the
    transaction is in the block with that hash; not that the block is canonical or confirmed.
    """
    unknown = sorted(set(anchor) - ANCHOR_FIELDS)
    if unknown:
        raise AnchorProofError(f"anchor record has fields nothing verifies: {', '.join(unknown)}")
    if anchor.get("format", ANCHOR_FORMAT) != ANCHOR_FORMAT:
        raise AnchorProofError(f"anchor record format is not {ANCHOR_FORMAT!r}")
    # 1. The header is the preimage of the block hash.
    block_hash = _hex_record(anchor, "block_hash", size=HASH_BYTES)
    header = _hex_record(anchor, "header_rlp", limit=MAX_HEADER_BYTES)
    if keccak256(header) != block_hash:
        raise AnchorHashMismatch("block hash (keccak of header_rlp)", block_hash, keccak256(header))

    # 2. The header says what the record says: block number, time and transactions root.
    fields = _rlp_list(header, "block header")
    if len(fields) < MIN_HEADER_FIELDS or len(fields) > len(HEADER_FIELDS):
        raise AnchorProofError(
            f"a block header has {MIN_HEADER_FIELDS}..{len(HEADER_FIELDS)} fields, got {len(fields)}"
        )
    transactions_root = _bytes_field(fields[_TX_ROOT_AT], "transactionsRoot")
    if len(transactions_root) != HASH_BYTES:
        raise AnchorProofError("the header's transactionsRoot is not 32 bytes")
    number = _rlp_int(fields[_NUMBER_AT], "number")
    timestamp = _rlp_int(fields[_TIMESTAMP_AT], "timestamp")
    if number != _int_record(anchor, "block_number"):
        raise AnchorProofError(f"header block number {number} differs from the record's {anchor['block_number']}")
    if timestamp != _int_record(anchor, "block_time"):
        raise AnchorProofError(
            f"header timestamp {timestamp} differs from the record's block_time {anchor['block_time']}"
        )
    if anchor.get("block_time_utc") is not None and anchor["block_time_utc"] != iso_utc(timestamp):
        raise AnchorProofError(f"block_time_utc {anchor['block_time_utc']!r} is not {iso_utc(timestamp)}")
    if anchor.get("transactions_root") is not None:
        claimed_root = _hex_record(anchor, "transactions_root", size=HASH_BYTES)
        if claimed_root != transactions_root:
            raise AnchorHashMismatch("transactions root", transactions_root, claimed_root)

    # 3. The transaction trie under that root holds raw_tx at rlp(tx_index).
    tx_index = _int_record(anchor, "tx_index")
    if tx_index > MAX_TX_INDEX:
        raise AnchorProofError(f"tx_index {tx_index} exceeds {MAX_TX_INDEX}")
    raw_tx = _hex_record(anchor, "raw_tx", limit=MAX_RAW_TX_BYTES)
    proven = _prove(transactions_root, tx_index, _proof_nodes(anchor.get("tx_proof")))
    if proven != raw_tx:
        raise AnchorProofError(f"the transaction proof does not lead to raw_tx at index {tx_index}")

    # 4. raw_tx is the transaction named by tx_hash.
    tx_hash = _hex_record(anchor, "tx_hash", size=HASH_BYTES)
    if keccak256(raw_tx) != tx_hash:
        raise AnchorHashMismatch("transaction hash (keccak of raw_tx)", tx_hash, keccak256(raw_tx))

    # 5. It is an anchor transaction on the record's chain, sent where the record says.
    tx = decode_transaction(raw_tx)
    chain_id = _int_record(anchor, "chain_id")
    if tx.chain_id is None:
        raise AnchorProofError("the anchor transaction commits to no chain id (pre-EIP-155)")
    if tx.chain_id != chain_id:
        raise AnchorProofError(f"the transaction is for chain {tx.chain_id}, the record says {chain_id}")
    if tx.to is None:
        raise AnchorProofError("the anchor transaction creates a contract instead of calling an address")
    if anchor.get("nonce") is not None and _int_record(anchor, "nonce") != tx.nonce:
        raise AnchorProofError(f"the transaction has nonce {tx.nonce}, the record says {anchor['nonce']}")
    if anchor.get("to") is not None:
        claimed_to = _hex_record(anchor, "to", size=ADDRESS_BYTES)
        if claimed_to != tx.to:
            raise AnchorProofError(f"the transaction goes to 0x{tx.to.hex()}, the record says {anchor['to']}")
    return parse_calldata(tx.data)


def iso_utc(unix_seconds: int) -> str:
    """Return ``unix_seconds`` as ISO-8601 UTC with a ``Z`` suffix (e.g. 2026-11-23T01:28:25Z)."""
    return dt.datetime.fromtimestamp(unix_seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _prove(transactions_root: bytes, tx_index: int, nodes: list[bytes]) -> bytes:
    try:
        return trie_get(transactions_root, rlp_encode_uint(tx_index), nodes)
    except RLPError as exc:
        raise AnchorProofError(f"invalid transaction proof: {exc}") from exc


def _proof_nodes(value: Any) -> list[bytes]:
    if not isinstance(value, list) or not value:
        raise AnchorProofError("tx_proof must be a non-empty list of 0x-hex RLP nodes")
    if len(value) > MAX_PROOF_NODES:
        raise AnchorProofError(f"tx_proof has {len(value)} nodes, more than {MAX_PROOF_NODES}")
    nodes = []
    for position, item in enumerate(value):
        encoded = _hex(item, f"tx_proof[{position}]", limit=MAX_PROOF_NODE_BYTES)
        try:
            # Nodes are found by the keccak of these very bytes, so they must also decode canonically.
            rlp_decode(encoded)
        except RLPError as exc:
            raise AnchorProofError(f"tx_proof[{position}] is not canonical RLP: {exc}") from exc
        nodes.append(encoded)
    return nodes


def _rlp_list(data: bytes, what: str) -> list[Any]:
    try:
        decoded = rlp_decode(data)
    except RLPError as exc:
        raise AnchorProofError(f"{what} is not valid RLP: {exc}") from exc
    if not isinstance(decoded, list):
        raise AnchorProofError(f"{what} is not an RLP list")
    return decoded


def _bytes_field(value: Any, what: str) -> bytes:
    if not isinstance(value, bytes):
        raise AnchorProofError(f"{what} must be an RLP byte string")
    return value


def _rlp_int(value: Any, what: str) -> int:
    raw = _bytes_field(value, what)
    if raw[:1] == b"\x00":
        raise AnchorProofError(f"{what} is not a canonical RLP integer (leading zero)")
    return int.from_bytes(raw, "big")


def _to_field(value: Any) -> bytes | None:
    raw = _bytes_field(value, "to")
    if not raw:
        return None
    if len(raw) != ADDRESS_BYTES:
        raise AnchorProofError(f"a transaction's to is {ADDRESS_BYTES} bytes, got {len(raw)}")
    return raw


def _hex(value: Any, what: str, *, size: int | None = None, limit: int | None = None) -> bytes:
    if not isinstance(value, str) or not value.startswith("0x"):
        raise AnchorProofError(f"{what} must be a 0x-prefixed hex string")
    if limit is not None and len(value) > 2 + 2 * limit:
        raise AnchorProofError(f"{what} exceeds {limit} bytes")
    try:
        data = bytes.fromhex(value[2:])
    except ValueError as exc:
        raise AnchorProofError(f"{what} is not hex: {exc}") from exc
    if size is not None and len(data) != size:
        raise AnchorProofError(f"{what} must be {size} bytes, got {len(data)}")
    return data


def _hex_record(anchor: Mapping[str, Any], key: str, *, size: int | None = None, limit: int | None = None) -> bytes:
    if key not in anchor:
        raise AnchorProofError(f"anchor record lacks {key}")
    return _hex(anchor[key], key, size=size, limit=limit)


def _int_record(anchor: Mapping[str, Any], key: str) -> int:
    value = anchor.get(key)
    # bool is an int subclass; JSON true must not pass for 1.
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise AnchorProofError(f"anchor record field {key} must be a non-negative integer, got {value!r}")
    return value
