"""RFC 9162 §2.1 Merkle trees: hashing, inclusion proofs and consistency proofs.

Leaves and nodes are domain-separated (0x00 / 0x01) so a node can never pass for a leaf (the
second-preimage attack that plain binary trees allow). An unbalanced tree splits at the largest
power of two below n. Building the tree level by level, with an unpaired last node promoted
unchanged to the next level, yields exactly that tree, which is what lets us compute all n proofs
in one O(n log n) pass.

Verification functions are pure functions of bytes: they raise a ``VerificationError`` subclass
carrying both hashes, or return None.
"""

from __future__ import annotations

import gc
import hashlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from verifier.errors import ProofError, RootMismatchError

HASH_SIZE = 32
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
#: No tree we build or accept is deeper than 2**64 leaves allows.
MAX_PROOF_LEN = 64
EMPTY_ROOT = hashlib.sha256(b"").digest()

_sha256 = hashlib.sha256


def leaf_hash(data: bytes) -> bytes:
    """Return the RFC 9162 leaf hash ``sha256(0x00 || data)``."""
    return _sha256(LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return the RFC 9162 interior node hash ``sha256(0x01 || left || right)``."""
    return _sha256(NODE_PREFIX + left + right).digest()


def leaf_hashes(items: Sequence[bytes]) -> list[bytes]:
    """Return the leaf hash of every item, in order."""
    sha, prefix = _sha256, LEAF_PREFIX
    return [sha(prefix + item).digest() for item in items]


def _next_level(level: Sequence[bytes]) -> list[bytes]:
    # Pairing through one shared iterator is the fastest pure-Python way to walk (0,1), (2,3), ...
    sha, prefix = _sha256, NODE_PREFIX
    pairs = iter(level)
    parents = [sha(prefix + left + right).digest() for left, right in zip(pairs, pairs, strict=False)]
    if len(level) & 1:
        parents.append(level[-1])
    return parents


def _levels(hashes: Sequence[bytes]) -> list[list[bytes]]:
    """All levels of the tree, leaves first; the last level holds only the root."""
    levels = [list(hashes)]
    while len(levels[-1]) > 1:
        levels.append(_next_level(levels[-1]))
    return levels


def root(hashes: Sequence[bytes]) -> bytes:
    """Return the Merkle tree head over the given leaf hashes (``EMPTY_ROOT`` for none)."""
    if not hashes:
        return EMPTY_ROOT
    level: Sequence[bytes] = hashes
    while len(level) > 1:
        level = _next_level(level)
    return level[0]


def inclusion_proof(hashes: Sequence[bytes], index: int) -> list[bytes]:
    """Return the RFC 9162 inclusion path for leaf ``index``. Raises IndexError when out of range."""
    if not 0 <= index < len(hashes):
        raise IndexError(f"leaf index {index} outside a tree of size {len(hashes)}")
    proof = []
    for level in _levels(hashes)[:-1]:
        sibling = index ^ 1
        if sibling < len(level):
            proof.append(level[sibling])
        index >>= 1
    return proof


def inclusion_proofs(hashes: Sequence[bytes], indices: Sequence[int]) -> list[list[bytes]]:
    """The inclusion paths of the leaves at ``indices``, the tree built once (a log export proves
    thousands of events of a tree of millions). Raises IndexError when an index is out of range."""
    levels = _levels(hashes)[:-1] if hashes else []
    proofs = []
    for index in indices:
        if not 0 <= index < len(hashes):
            raise IndexError(f"leaf index {index} outside a tree of size {len(hashes)}")
        proof = []
        for level in levels:
            sibling = index ^ 1
            if sibling < len(level):
                proof.append(level[sibling])
            index >>= 1
        proofs.append(proof)
    return proofs


@contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    # Millions of fresh lists make the cyclic collector rescan the young generation over and over
    # (5x slower measured); these lists hold only bytes and cannot form cycles.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def all_inclusion_proofs(hashes: Sequence[bytes]) -> list[list[bytes]]:
    """Return the inclusion path of every leaf, in leaf order, in one O(n log n) pass.

    Works top-down: a node's path is its sibling followed by its parent's path, and each list
    concatenation runs in C, so the cost is dominated by the hashing of the tree itself.
    """
    if not hashes:
        return []
    levels = _levels(hashes)
    paths: list[list[bytes]] = [[]]
    with _no_cyclic_gc():
        for level in reversed(levels[:-1]):
            below: list[list[bytes]] = []
            add = below.append
            pairs = iter(level)
            for parent_path, (left, right) in zip(paths, zip(pairs, pairs, strict=False), strict=False):
                add([right, *parent_path])
                add([left, *parent_path])
            if len(level) & 1:
                # The promoted last node has no sibling here; each returned list is still distinct,
                # because only this one node descends from that parent.
                below.append(paths[-1])
            paths = below
    return paths


def consistency_proof(hashes: Sequence[bytes], size1: int) -> list[bytes]:
    """Return the RFC 9162 §2.1.4.1 consistency proof from the first ``size1`` leaves to all of them.

    Raises ValueError when ``size1`` is not within 1..n.
    """
    size2 = len(hashes)
    if not 0 < size1 <= size2:
        raise ValueError(f"size1 {size1} outside 1..{size2}")
    levels = _levels(hashes)

    def subtree_root(lo: int, hi: int) -> bytes:
        # Every subtree the RFC recursion visits is an aligned block or a right-edge block, and each
        # of those is a node of the level-wise tree; the split is only a safety net.
        height = (hi - lo - 1).bit_length()
        if lo % (1 << height) == 0 and (hi - lo == 1 << height or hi == size2):
            return levels[height][lo >> height]
        split = 1 << ((hi - lo - 1).bit_length() - 1)
        return node_hash(subtree_root(lo, lo + split), subtree_root(lo + split, hi))

    def subproof(m: int, lo: int, hi: int, complete: bool) -> list[bytes]:
        n = hi - lo
        if m == n:
            return [] if complete else [subtree_root(lo, hi)]
        k = 1 << ((n - 1).bit_length() - 1)
        if m <= k:
            return [*subproof(m, lo, lo + k, complete), subtree_root(lo + k, hi)]
        return [*subproof(m - k, lo + k, hi, False), subtree_root(lo, lo + k)]

    return subproof(size1, 0, size2, True)


def _check_hash(name: str, value: bytes) -> None:
    if len(value) != HASH_SIZE:
        raise ProofError(f"{name} is {len(value)} bytes, expected {HASH_SIZE}")


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes], expected_root: bytes) -> None:
    """Check an RFC 9162 §2.1.3.2 inclusion proof.

    Returns None when ``leaf`` (a leaf hash) sits at ``index`` of the tree of ``size`` leaves with
    root ``expected_root``. Raises ProofError for a malformed proof and RootMismatchError (with both
    roots) when the proof leads elsewhere.
    """
    _check_hash("leaf hash", leaf)
    _check_hash("root", expected_root)
    for position, element in enumerate(proof):
        _check_hash(f"proof[{position}]", element)
    if index < 0 or size <= 0 or index >= size:
        raise ProofError(f"leaf index {index} outside a tree of size {size}")
    if len(proof) > MAX_PROOF_LEN:
        raise ProofError(f"proof of {len(proof)} hashes is longer than {MAX_PROOF_LEN}")
    fn, sn, r = index, size - 1, leaf
    for element in proof:
        if sn == 0:
            raise ProofError(f"proof has {len(proof)} hashes, more than a tree of size {size} needs")
        if fn & 1 or fn == sn:
            r = node_hash(element, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, element)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError(f"proof has {len(proof)} hashes, fewer than a tree of size {size} needs")
    if r != expected_root:
        raise RootMismatchError(expected_root, r)


def verify_consistency(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> None:
    """Check an RFC 9162 §2.1.4.2 consistency proof between two tree heads.

    A tree of size 0 proves nothing, so ``size1 == 0`` is rejected. Raises ProofError or
    RootMismatchError; returns None when the tree of ``size2`` extends the tree of ``size1``.
    """
    # Roots are compared, never hashed, so their length needs no check of its own.
    for position, element in enumerate(proof):
        _check_hash(f"proof[{position}]", element)
    if size1 <= 0:
        raise ProofError("consistency with an empty tree proves nothing")
    if size2 < size1:
        raise ProofError(f"size2 {size2} is smaller than size1 {size1}")
    if size1 == size2:
        if proof:
            raise ProofError("equal sizes need an empty proof")
        if root1 != root2:
            raise RootMismatchError(root1, root2)
        return
    if not proof:
        raise ProofError("empty consistency proof for different sizes")
    if len(proof) > MAX_PROOF_LEN:
        raise ProofError(f"proof of {len(proof)} hashes is longer than {MAX_PROOF_LEN}")

    path = list(proof)
    if size1 & (size1 - 1) == 0:
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for element in path[1:]:
        if sn == 0:
            raise ProofError("consistency proof is longer than the trees need")
        if fn & 1 or fn == sn:
            fr = node_hash(element, fr)
            sr = node_hash(element, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, element)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("consistency proof is shorter than the trees need")
    if fr != root1:
        raise RootMismatchError(root1, fr)
    if sr != root2:
        raise RootMismatchError(root2, sr)
