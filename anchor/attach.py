"""Attach a batch's proofs to its packages: ``proof/`` files added, the package rewritten atomically.

Attaching is idempotent: a package that already carries this batch's proof (and every anchor
file asked for) is left alone, so a restart after a crash mid-batch simply goes on. An anchor that
confirms later is attached by rewriting the package with one more anchor file; the evidence
fingerprint covers only the manifest, so it never changes.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

from anchor.ethereum import verifiable_part
from verifier.canonical import canonical_json
from verifier.package import ANCHOR_PATH, PROOF_PATH
from verifier.proof import InclusionProof
from verifier.wacz import Member, rewrite_package

#: Anchor files of a package: (path inside the package, the full anchor record).
AnchorFiles: TypeAlias = Sequence[tuple[str, dict[str, Any]]]


@dataclass(frozen=True)
class Token:
    """One valid RFC 3161 token over a batch root, with the certificates its TSA sent."""

    tsa: str
    token: bytes
    chain_pem: bytes


def _anchor_files(anchors: AnchorFiles | dict[str, Any] | None) -> AnchorFiles:
    """Accept the single record of one-chain callers as well as named files."""
    if anchors is None:
        return ()
    if isinstance(anchors, dict):
        return ((ANCHOR_PATH, anchors),)
    return anchors


def proof_members(proof: InclusionProof, tokens: Sequence[Token],
                  anchors: AnchorFiles | dict[str, Any] | None) -> list[Member]:
    """The ``proof/`` files for one package."""
    members = [Member(PROOF_PATH, data=canonical_json(proof.to_json()))]
    for number, token in enumerate(tokens):
        members.append(Member(f"proof/timestamp-{number}.tsr", data=token.token))
        if token.chain_pem:
            members.append(Member(f"proof/tsa-{number}.pem", data=token.chain_pem))
    for name, record in _anchor_files(anchors):
        # Only verifiable fields go into the package; what the node merely reported stays behind.
        members.append(Member(name, data=canonical_json(verifiable_part(record))))
    return members


def carries_proof(package: Path, batch_id: str, *, anchor_names: Sequence[str] = ()) -> bool:
    """True when the package already holds this batch's proof and every file of ``anchor_names``."""
    try:
        with zipfile.ZipFile(package) as archive:
            names = set(archive.namelist())
            if PROOF_PATH not in names or not set(anchor_names) <= names:
                return False
            return bool(json.loads(archive.read(PROOF_PATH)).get("batch_id") == batch_id)
    except (OSError, zipfile.BadZipFile, ValueError):
        return False


def attach(package: Path, proof: InclusionProof, tokens: Sequence[Token],
           anchors: AnchorFiles | dict[str, Any] | None) -> bool:
    """Rewrite ``package`` with its proof files. Returns False when it already carried them."""
    files = _anchor_files(anchors)
    if carries_proof(package, proof.batch_id, anchor_names=[name for name, _ in files]):
        return False
    rewrite_package(package, proof_members(proof, tokens, files), drop=lambda name: name.startswith("proof/"))
    return True
