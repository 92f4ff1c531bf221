from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from verifier import merkle
from verifier.errors import ProofError, RootMismatchError, VerificationError

VECTOR_DIR = Path(__file__).parents[1] / "vectors" / "merkle"
# The reference leaves of transparency-dev/merkle's testdata.
REFERENCE_LEAVES = [bytes.fromhex(h) for h in (
    "", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f",
)]
ROOT_8 = bytes.fromhex("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")


def _b64(value: str | None) -> bytes:
    return base64.b64decode(value or "")


def _vector_files(kind: str) -> list[Path]:
    return sorted((VECTOR_DIR / kind).rglob("*.json"))


@pytest.mark.parametrize("path", _vector_files("inclusion"), ids=lambda p: str(p.relative_to(VECTOR_DIR)))
def test_inclusion_vectors(path: Path) -> None:
    v = json.loads(path.read_text())
    proof = [_b64(p) for p in v["proof"] or []]
    call = lambda: merkle.verify_inclusion(  # noqa: E731
        _b64(v["leafHash"]), v["leafIdx"], v["treeSize"], proof, _b64(v["root"]))
    if v["wantErr"]:
        with pytest.raises(VerificationError):
            call()
    else:
        call()


@pytest.mark.parametrize("path", _vector_files("consistency"), ids=lambda p: str(p.relative_to(VECTOR_DIR)))
def test_consistency_vectors(path: Path) -> None:
    v = json.loads(path.read_text())
    proof = [_b64(p) for p in v["proof"] or []]
    call = lambda: merkle.verify_consistency(  # noqa: E731
        v["size1"], v["size2"], proof, _b64(v["root1"]), _b64(v["root2"]))
    if v["wantErr"]:
        with pytest.raises(VerificationError):
            call()
    else:
        call()


def test_vector_count_is_complete() -> None:
    # Guards against a copy that silently lost files: upstream ships 98 of each.
    assert len(_vector_files("inclusion")) == 98
    assert len(_vector_files("consistency")) == 98


def test_reference_roots() -> None:
    hashes = merkle.leaf_hashes(REFERENCE_LEAVES)
    assert merkle.root(hashes) == ROOT_8
    assert merkle.root([]) == hashlib.sha256(b"").digest()
    assert merkle.root(hashes[:1]) == hashes[0]


def test_leaf_and_node_are_domain_separated() -> None:
    a, b = merkle.leaf_hash(b"a"), merkle.leaf_hash(b"b")
    assert merkle.node_hash(a, b) == hashlib.sha256(b"\x01" + a + b).digest()
    assert merkle.leaf_hash(a + b) != merkle.node_hash(a, b)


def _reference_root(hashes: list[bytes]) -> bytes:
    # The RFC's recursive definition, written independently of the level-wise code under test.
    if len(hashes) == 1:
        return hashes[0]
    k = 1 << ((len(hashes) - 1).bit_length() - 1)
    return merkle.node_hash(_reference_root(hashes[:k]), _reference_root(hashes[k:]))


@settings(max_examples=150, deadline=None)
@given(st.integers(min_value=1, max_value=70))
def test_proofs_round_trip(size: int) -> None:
    hashes = [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(size)]
    head = merkle.root(hashes)
    assert head == _reference_root(hashes)
    proofs = merkle.all_inclusion_proofs(hashes)
    assert len(proofs) == size
    for index, proof in enumerate(proofs):
        assert proof == merkle.inclusion_proof(hashes, index)
        merkle.verify_inclusion(hashes[index], index, size, proof, head)
    for size1 in range(1, size + 1):
        proof = merkle.consistency_proof(hashes, size1)
        merkle.verify_consistency(size1, size, proof, merkle.root(hashes[:size1]), head)


def test_all_proofs_are_distinct_lists() -> None:
    proofs = merkle.all_inclusion_proofs([merkle.leaf_hash(bytes([i])) for i in range(7)])
    assert len({id(p) for p in proofs}) == 7


def test_root_mismatch_carries_both_roots() -> None:
    hashes = merkle.leaf_hashes(REFERENCE_LEAVES)
    proof = merkle.inclusion_proof(hashes, 3)
    wrong = bytes(32)
    with pytest.raises(RootMismatchError) as caught:
        merkle.verify_inclusion(hashes[3], 3, 8, proof, wrong)
    assert caught.value.expected == wrong
    assert caught.value.calculated == ROOT_8


def test_rejects_wrong_lengths_and_indices() -> None:
    hashes = merkle.leaf_hashes(REFERENCE_LEAVES)
    proof = merkle.inclusion_proof(hashes, 0)
    with pytest.raises(ProofError, match="outside a tree"):
        merkle.verify_inclusion(hashes[0], 8, 8, proof, ROOT_8)
    with pytest.raises(ProofError, match="fewer than"):
        merkle.verify_inclusion(hashes[0], 0, 8, proof[:-1], ROOT_8)
    with pytest.raises(ProofError, match="more than"):
        merkle.verify_inclusion(hashes[0], 0, 8, [*proof, ROOT_8], ROOT_8)
    with pytest.raises(ProofError, match="bytes, expected 32"):
        merkle.verify_inclusion(hashes[0][:31], 0, 8, proof, ROOT_8)
    with pytest.raises(IndexError):
        merkle.inclusion_proof(hashes, 8)
    with pytest.raises(ValueError, match="outside"):
        merkle.consistency_proof(hashes, 0)
