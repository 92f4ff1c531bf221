"""Attach a batch's proofs to its packages: ``proof/`` files added, the package rewritten atomically.

Attaching is idempotent: a package that already carries this batch's proof is left alone, so a
restart after a crash mid-batch simply goes on.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from anchor.ethereum import verifiable_part
from verifier.canonical import canonical_json
from verifier.package import ANCHOR_PATH, PROOF_PATH
from verifier.proof import InclusionProof
from verifier.wacz import Member, rewrite_package


@dataclass(frozen=True)
class Token:
    """One valid RFC 3161 token over a batch root, with the certificates its TSA sent."""

    tsa: str
    token: bytes
    chain_pem: bytes


def proof_members(proof: InclusionProof, tokens: Sequence[Token], anchor: dict[str, Any] | None) -> list[Member]:
    """The ``proof/`` files for one package."""
    members = [Member(PROOF_PATH, data=canonical_json(proof.to_json()))]
    for number, token in enumerate(tokens):
        members.append(Member(f"proof/timestamp-{number}.tsr", data=token.token))
        if token.chain_pem:
            members.append(Member(f"proof/tsa-{number}.pem", data=token.chain_pem))
    if anchor is not None:
        # Only verifiable fields go into the package; what the node merely reported stays behind.
        members.append(Member(ANCHOR_PATH, data=canonical_json(verifiable_part(anchor))))
    return members


def carries_proof(package: Path, batch_id: str, *, anchored: bool) -> bool:
    """True when the package already holds this batch's proof (and its anchor, if ``anchored``)."""
    try:
        with zipfile.ZipFile(package) as archive:
            names = set(archive.namelist())
            if PROOF_PATH not in names or (anchored and ANCHOR_PATH not in names):
                return False
            return bool(json.loads(archive.read(PROOF_PATH)).get("batch_id") == batch_id)
    except (OSError, zipfile.BadZipFile, ValueError):
        return False


def attach(package: Path, proof: InclusionProof, tokens: Sequence[Token], anchor: dict[str, Any] | None) -> bool:
    """Rewrite ``package`` with its proof files. Returns False when it already carried them."""
    if carries_proof(package, proof.batch_id, anchored=anchor is not None):
        return False
    rewrite_package(package, proof_members(proof, tokens, anchor), drop=lambda name: name.startswith("proof/"))
    return True
