"""The sealing files under ``proof/``: the Merkle inclusion proof (``proof.json``).

These files are added after the fingerprint was fixed, so they are read leniently by the package
reader and judged here: a malformed proof is a failed check, not unusable input.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from verifier.errors import VerificationError
from verifier.merkle import HASH_SIZE, MAX_PROOF_LEN

PROOF_FORMAT = "tiezheng-proof/1"
_HEX32 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class InclusionProof:
    batch_id: str
    leaf: bytes
    leaf_index: int
    tree_size: int
    inclusion_path: tuple[bytes, ...]
    root: bytes

    def to_json(self) -> dict[str, Any]:
        return {"format": PROOF_FORMAT, "batch_id": self.batch_id, "leaf": self.leaf.hex(),
                "leaf_index": self.leaf_index, "tree_size": self.tree_size,
                "inclusion_path": [h.hex() for h in self.inclusion_path], "root": self.root.hex()}


def _hash(value: Any, what: str) -> bytes:
    if not isinstance(value, str) or not _HEX32.fullmatch(value):
        raise VerificationError(f"proof.json: {what} must be {HASH_SIZE * 2} lowercase hex digits")
    return bytes.fromhex(value)


def _count(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise VerificationError(f"proof.json: {what} must be a non-negative integer")
    return value


def parse_proof(data: Any) -> InclusionProof:
    """Build an InclusionProof from parsed proof.json. Raises VerificationError when malformed."""
    if not isinstance(data, dict):
        raise VerificationError("proof.json must be a JSON object")
    if data.get("format") != PROOF_FORMAT:
        raise VerificationError(f"proof.json format is not {PROOF_FORMAT!r}")
    path = data.get("inclusion_path")
    if not isinstance(path, list) or len(path) > MAX_PROOF_LEN:
        raise VerificationError(f"proof.json: inclusion_path must be a list of at most {MAX_PROOF_LEN} hashes")
    batch_id = data.get("batch_id")
    if not isinstance(batch_id, str):
        raise VerificationError("proof.json: batch_id must be a string")
    return InclusionProof(
        batch_id=batch_id,
        leaf=_hash(data.get("leaf"), "leaf"),
        leaf_index=_count(data.get("leaf_index"), "leaf_index"),
        tree_size=_count(data.get("tree_size"), "tree_size"),
        inclusion_path=tuple(_hash(h, f"inclusion_path[{i}]") for i, h in enumerate(path)),
        root=_hash(data.get("root"), "root"),
    )
