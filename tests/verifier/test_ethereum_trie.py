"""Our own RLP and Merkle-Patricia proof reader agrees with the `rlp` and `trie` libraries."""

from __future__ import annotations

import os

import pytest
import rlp
from eth_hash.auto import keccak
from hypothesis import given, settings
from hypothesis import strategies as st
from trie.hexary import HexaryTrie

from verifier.ethereum_trie import RLPError, rlp_decode, rlp_encode_uint, trie_get
from verifier.keccak import keccak256


def _trie(values: list[bytes]) -> HexaryTrie:
    trie = HexaryTrie({})
    for index, value in enumerate(values):
        trie[rlp.encode(index)] = value
    return trie


def test_keccak_is_ethereums() -> None:
    assert keccak256(b"") == keccak(b"")
    assert keccak256(b"").hex().startswith("c5d2460186f7233c")


@given(st.integers(min_value=0, max_value=2**64))
def test_uint_keys_match_rlp(value: int) -> None:
    assert rlp_encode_uint(value) == rlp.encode(value)


@settings(max_examples=200, deadline=None)
@given(st.recursive(st.binary(max_size=80), lambda inner: st.lists(inner, max_size=6), max_leaves=20))
def test_decode_round_trips_the_library(item: object) -> None:
    encoded = rlp.encode(item)
    assert rlp_decode(encoded) == rlp.decode(encoded)


@pytest.mark.parametrize("bad", [
    b"\x81\x05",            # a single byte below 0x80 must encode itself
    b"\xb8\x01\xff",        # long form for a short string
    b"\x83ab",              # runs past the end
    b"\xc2\x01",            # list runs past the end
    b"\x01\x02",            # trailing bytes
    b"\xb9\x00\x40" + bytes(64),  # length with a leading zero
])
def test_rejects_non_canonical_rlp(bad: bytes) -> None:
    with pytest.raises(RLPError):
        rlp_decode(bad)


@pytest.mark.parametrize("count", [1, 2, 17, 130, 300])
def test_every_proof_from_the_library_verifies(count: int) -> None:
    values = [os.urandom(40 + i % 90) for i in range(count)]
    trie = _trie(values)
    for index in {0, min(1, count - 1), count // 2, count - 1, min(count - 1, 128)}:
        proof = [rlp.encode(node) for node in trie.get_proof(rlp.encode(index))]
        assert trie_get(trie.root_hash, rlp_encode_uint(index), proof) == values[index]


def test_wrong_key_missing_node_and_flipped_byte_are_rejected() -> None:
    values = [os.urandom(60) for _ in range(40)]
    trie = _trie(values)
    proof = [rlp.encode(node) for node in trie.get_proof(rlp.encode(7))]
    with pytest.raises(RLPError):
        trie_get(trie.root_hash, rlp_encode_uint(8), proof)  # another key, this proof
    with pytest.raises(RLPError, match="missing a node"):
        trie_get(trie.root_hash, rlp_encode_uint(7), proof[:-1])
    for position in range(len(proof)):
        tampered = list(proof)
        node = bytearray(tampered[position])
        node[len(node) // 2] ^= 1
        tampered[position] = bytes(node)
        with pytest.raises(RLPError):
            trie_get(trie.root_hash, rlp_encode_uint(7), tampered)
