"""Keccak-256 as Ethereum uses it (the original Keccak padding 0x01, not SHA3-256's 0x06).

Written here, small, because nothing at hand has it: OpenSSL 3.0 (and so ``hashlib``) offers only
SHA3, and pycryptodome's keccak loads cffi and a C parser first, about 60 ms of every run of
``tiezheng-verify``, four times what the hashing itself costs. An offline anchor proof hashes a
few kilobytes (the block header, the raw transaction and three trie nodes), so plain Python is
fast enough: under a millisecond per 136-byte block. Tests check it against pycryptodome and the
published test vectors.

Boundary: a wrong hash here could make a forged anchor proof pass or a good one fail.
"""

from __future__ import annotations

#: The rate of Keccak-256 in bytes: 1600-bit state minus a 512-bit capacity.
RATE_BYTES = 136
_MASK = (1 << 64) - 1

_ROUND_CONSTANTS = (
    0x0000000000000001, 0x0000000000008082, 0x800000000000808A, 0x8000000080008000,
    0x000000000000808B, 0x0000000080000001, 0x8000000080008081, 0x8000000000008009,
    0x000000000000008A, 0x0000000000000088, 0x0000000080008009, 0x000000008000000A,
    0x000000008000808B, 0x800000000000008B, 0x8000000000008089, 0x8000000000008003,
    0x8000000000008002, 0x8000000000000080, 0x000000000000800A, 0x800000008000000A,
    0x8000000080008081, 0x8000000000008080, 0x0000000080000001, 0x8000000080008008,
)

def _rho_pi() -> tuple[tuple[int, int, int], ...]:
    """rho's rotations and pi's moves, unrolled: (source lane, target lane, rotation) for 24 lanes."""
    steps = []
    x, y = 1, 0
    for t in range(24):
        rotation = ((t + 1) * (t + 2) // 2) % 64
        source = x + 5 * y
        x, y = y, (2 * x + 3 * y) % 5
        steps.append((source, x + 5 * y, rotation))
    return tuple(steps)


_RHO_PI = _rho_pi()


def _permute(lanes: list[int]) -> None:
    """Keccak-f[1600] on 25 lanes of 64 bits, in place (FIPS 202 §3.3 with the step mappings unrolled)."""
    for constant in _ROUND_CONSTANTS:
        # theta
        c = [lanes[x] ^ lanes[x + 5] ^ lanes[x + 10] ^ lanes[x + 15] ^ lanes[x + 20] for x in range(5)]
        for x in range(5):
            right = c[(x + 1) % 5]
            d = c[(x - 1) % 5] ^ (((right << 1) | (right >> 63)) & _MASK)
            for y in range(0, 25, 5):
                lanes[x + y] ^= d
        # rho and pi: lane (x, y) moves to (y, 2x + 3y), rotated
        moved = lanes[:]  # lane (0, 0) stays, unrotated
        for source, target, rotation in _RHO_PI:
            value = lanes[source]
            moved[target] = ((value << rotation) | (value >> (64 - rotation))) & _MASK if rotation else value
        # chi
        for y in range(0, 25, 5):
            row = moved[y:y + 5]
            for x in range(5):
                lanes[x + y] = row[x] ^ (~row[(x + 1) % 5] & row[(x + 2) % 5])
        # iota
        lanes[0] ^= constant


def keccak256(data: bytes) -> bytes:
    """Ethereum's keccak-256 of ``data``."""
    padded = bytearray(data)
    padded.append(0x01)
    padded.extend(b"\x00" * (-len(padded) % RATE_BYTES))
    padded[-1] |= 0x80
    lanes = [0] * 25
    for start in range(0, len(padded), RATE_BYTES):
        block = padded[start:start + RATE_BYTES]
        for i in range(RATE_BYTES // 8):
            lanes[i] ^= int.from_bytes(block[8 * i:8 * i + 8], "little")
        _permute(lanes)
    return b"".join(lane.to_bytes(8, "little") for lane in lanes[:4])
