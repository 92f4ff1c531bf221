"""The verifier's own keccak-256 against published vectors and two independent implementations."""

from __future__ import annotations

import random

import pytest

from verifier.keccak import RATE_BYTES, keccak256

#: Keccak-256 (Ethereum) of short messages, as the Keccak team's and Ethereum's tests publish them.
VECTORS = {
    b"": "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470",
    b"abc": "4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45",
    b"The quick brown fox jumps over the lazy dog": "4d741b6f1eb29cb2a9b9911c82f56fa8d73b04959d3d9d222895df6c0b28aa15",
    # The empty-trie root and the empty-list hash every Ethereum header carries.
    bytes([0x80]): "56e81f171bcc55a6ff8345e692c0f86e5b48e01b996cadc001622fb5e363b421",
    bytes([0xC0]): "1dcc4de8dec75d7aab85b567b6ccd41ad312451b948a7413f0a142fd40d49347",
}

#: Every padding case: empty, one short of a block, exactly a block, one over, and several blocks.
LENGTHS = [0, 1, RATE_BYTES - 2, RATE_BYTES - 1, RATE_BYTES, RATE_BYTES + 1, 2 * RATE_BYTES, 1000, 4096]


@pytest.mark.parametrize(("message", "digest"), VECTORS.items(), ids=lambda v: v[:12] if isinstance(v, bytes) else "")
def test_published_vectors(message: bytes, digest: str) -> None:
    assert keccak256(message).hex() == digest


@pytest.mark.parametrize("length", LENGTHS)
def test_agrees_with_pycryptodome_and_eth_hash(length: int) -> None:
    keccak = pytest.importorskip("Crypto.Hash.keccak", reason="pycryptodome comes with the anchor extra")
    eth_hash = pytest.importorskip("eth_hash.auto", reason="eth-hash comes with the anchor extra")
    rng = random.Random(length)
    for _ in range(5):
        data = rng.randbytes(length)
        ours = keccak256(data)
        assert ours == keccak.new(digest_bits=256, data=data).digest()
        assert ours == eth_hash.keccak(data)


def test_is_not_sha3() -> None:
    """SHA3-256 pads with 0x06, Keccak with 0x01: the same input must hash differently."""
    import hashlib

    assert keccak256(b"abc") != hashlib.sha3_256(b"abc").digest()
