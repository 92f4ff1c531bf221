"""The Ethereum encodings the offline anchor proof needs: RLP and Merkle-Patricia proofs (keccak in keccak.py).

Written here, small and strict, instead of importing ``rlp``/``trie``/``eth-utils``: those pull in
a third of a second of imports for every run of ``tiezheng-verify``, and an independent reading of
the proof is worth having beside the library that built it (tests check both agree).

Boundary: a change here can make a false anchor proof pass. Decoding is canonical-only: a
non-minimal length or integer, trailing bytes, or a node missing from the proof is an error.
"""

from __future__ import annotations

from typing import TypeAlias

from verifier.errors import VerificationError
from verifier.keccak import keccak256

#: Far beyond any header, transaction or trie node; bounds work on hostile input.
MAX_RLP_BYTES = 1 << 20
MAX_RLP_DEPTH = 16
MAX_TRIE_DEPTH = 64

RLPItem: TypeAlias = "bytes | list[RLPItem]"


class RLPError(VerificationError):
    """Bytes that are not canonical RLP, or a trie proof that does not hold."""


def _length(data: bytes, at: int, size_bytes: int) -> int:
    if at + size_bytes > len(data):
        raise RLPError("RLP length runs past the end")
    raw = data[at:at + size_bytes]
    if raw[0] == 0:
        raise RLPError("RLP length has a leading zero")
    value = int.from_bytes(raw, "big")
    if value < 56:
        raise RLPError("RLP long form used for a short length")
    return value


def _decode(data: bytes, at: int, depth: int) -> tuple[RLPItem, int]:
    if depth > MAX_RLP_DEPTH:
        raise RLPError("RLP nested too deeply")
    if at >= len(data):
        raise RLPError("RLP item runs past the end")
    prefix = data[at]
    if prefix < 0x80:
        return data[at:at + 1], at + 1
    if prefix <= 0xB7:
        size, start = prefix - 0x80, at + 1
        if size == 1 and start < len(data) and data[start] < 0x80:
            raise RLPError("single byte below 0x80 must encode itself")
        return _slice(data, start, size), start + size
    if prefix <= 0xBF:
        size_bytes = prefix - 0xB7
        size, start = _length(data, at + 1, size_bytes), at + 1 + size_bytes
        return _slice(data, start, size), start + size
    if prefix <= 0xF7:
        size, start = prefix - 0xC0, at + 1
    else:
        size_bytes = prefix - 0xF7
        size, start = _length(data, at + 1, size_bytes), at + 1 + size_bytes
    end = start + size
    if end > len(data):
        raise RLPError("RLP list runs past the end")
    items: list[RLPItem] = []
    position = start
    while position < end:
        item, position = _decode(data, position, depth + 1)
        items.append(item)
    if position != end:
        raise RLPError("RLP list items overrun the list")
    return items, end


def _slice(data: bytes, start: int, size: int) -> bytes:
    if start + size > len(data):
        raise RLPError("RLP string runs past the end")
    return data[start:start + size]


def rlp_decode(data: bytes) -> RLPItem:
    """Decode one canonical RLP item that spans all of ``data``. Raises RLPError."""
    if len(data) > MAX_RLP_BYTES:
        raise RLPError(f"RLP input over {MAX_RLP_BYTES} bytes")
    item, end = _decode(data, 0, 0)
    if end != len(data):
        raise RLPError("trailing bytes after the RLP item")
    return item


def rlp_encode_uint(value: int) -> bytes:
    """RLP of a non-negative integer (how a transaction trie keys index ``value``)."""
    if value < 0:
        raise ValueError("negative integer")
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    if len(raw) == 1 and raw[0] < 0x80:
        return raw
    if len(raw) >= 56:
        raise ValueError("integer too large")
    return bytes([0x80 + len(raw)]) + raw


def _nibbles(key: bytes) -> list[int]:
    return [n for byte in key for n in (byte >> 4, byte & 0x0F)]


def _hex_prefix(encoded: bytes) -> tuple[list[int], bool]:
    # Yellow Paper appendix C: the first nibble flags leaf (2) and odd length (1).
    if not encoded:
        raise RLPError("empty trie path")
    nibbles = _nibbles(encoded)
    flag = nibbles[0]
    if flag > 3 or (flag in (0, 2) and nibbles[1] != 0):
        raise RLPError("malformed trie path prefix")
    return nibbles[1:] if flag & 1 else nibbles[2:], flag >= 2


def trie_get(root: bytes, key: bytes, proof: list[bytes]) -> bytes:
    """Return the value under ``key`` in the Merkle-Patricia trie with hash ``root``, from proof nodes.

    Every node must be in ``proof`` by its keccak (or embedded in its parent when shorter than 32
    bytes). Raises RLPError when the proof is incomplete, malformed, or leads elsewhere.
    """
    nodes = {keccak256(node): node for node in proof}
    path = _nibbles(key)
    reference: RLPItem = root
    for _ in range(MAX_TRIE_DEPTH):
        if isinstance(reference, bytes):
            if len(reference) != 32 or reference not in nodes:
                raise RLPError("trie proof is missing a node")
            node = rlp_decode(nodes[reference])
        else:
            node = reference
        if not isinstance(node, list):
            raise RLPError("trie node is not a list")
        if len(node) == 17:
            if not path:
                value = node[16]
                if not isinstance(value, bytes) or not value:
                    raise RLPError("key not in the trie")
                return value
            reference, path = node[path[0]], path[1:]
            if reference == b"":
                raise RLPError("key not in the trie")
        elif len(node) == 2 and isinstance(node[0], bytes):
            segment, is_leaf = _hex_prefix(node[0])
            if is_leaf:
                if segment != path or not isinstance(node[1], bytes):
                    raise RLPError("key not in the trie")
                return node[1]
            if path[:len(segment)] != segment:
                raise RLPError("key not in the trie")
            reference, path = node[1], path[len(segment):]
        else:
            raise RLPError("trie node has the wrong shape")
    raise RLPError(f"trie deeper than {MAX_TRIE_DEPTH} levels")
