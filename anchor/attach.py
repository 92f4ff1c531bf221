"""Attach a batch's proofs to its packages: ``proof/`` files added, the package rewritten atomically.

Attaching is idempotent: a package that already carries this batch's proof (and every anchor
file asked for) is left alone, so a restart after a crash mid-batch simply goes on. An anchor that
confirms later is attached by rewriting the package with one more anchor file; the evidence
fingerprint covers only the manifest, so it never changes.
"""

from __future__ import annotations

import base64
import json
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from anchor.ethereum import verifiable_part
from anchor.item_updates import mark_attached
from anchor.store import ItemState, SealBatch, SealItem, utcnow
from verifier import merkle
from verifier.canonical import canonical_json
from verifier.package import ANCHOR_PATH, PROOF_PATH
from verifier.proof import InclusionProof
from verifier.wacz import Member, rewrite_package

#: Items attached per committed transaction: small enough that a crash redoes little.
ATTACH_COMMIT_EVERY = 200
#: Without package files, only bookkeeping: big slices.
MARK_COMMIT_EVERY = 20_000

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


def attach_batch(engine: Engine, batch: SealBatch, files: AnchorFiles, *, write_packages: bool = True,
                 resume: bool = True, renew_lease: Callable[[], object] | None = None) -> None:
    """Write every item of ``batch`` its proof files, with the anchor ``files``.

    ``resume`` (the batch's first attachment): items are marked attached in committed slices, and
    those already marked are skipped, so a restart goes on where a crash stopped. Otherwise (a late
    anchor) every package is rewritten unless it already holds every file. ``write_packages`` False
    only marks items, for benchmarks of the batch pipeline. Raises RuntimeError when the items no
    longer hash to the batch's root.
    """
    tokens = [Token(tsa=t["tsa"], token=base64.b64decode(t["token"]), chain_pem=t["chain_pem"].encode())
              for t in json.loads(batch.timestamps or "[]")]
    with Session(engine) as session:
        items = session.exec(select(SealItem.id, SealItem.fingerprint, SealItem.package_path, SealItem.state)
                             .where(SealItem.batch_id == batch.id).order_by(col(SealItem.leaf_index))).all()
    fingerprints = [bytes.fromhex(fp) for _, fp, _, _ in items]
    leaves = merkle.leaf_hashes(fingerprints)
    root = merkle.root(leaves)
    if root.hex() != batch.root:
        raise RuntimeError(f"batch {batch.id}: items no longer hash to the stored root")
    # Rewriting a package is slow, so commit often; bookkeeping alone can go in big slices.
    commit_every = ATTACH_COMMIT_EVERY if write_packages else MARK_COMMIT_EVERY
    done: list[int] = []
    for index, ((item_id, _, package, state), path) in enumerate(
            zip(items, merkle.all_inclusion_proofs(leaves), strict=True)):
        if item_id is None or (resume and state == ItemState.ATTACHED):
            continue
        if write_packages:
            proof = InclusionProof(batch_id=batch.id, leaf=fingerprints[index], leaf_index=index,
                                   tree_size=len(items), inclusion_path=tuple(path), root=root)
            attach(Path(package), proof, tokens, files)
        if not resume:
            continue
        done.append(item_id)
        if len(done) >= commit_every:
            _mark_attached(engine, done)
            done = []
            if renew_lease is not None:
                renew_lease()
    _mark_attached(engine, done)


def _mark_attached(engine: Engine, item_ids: Sequence[int]) -> None:
    """Commit ``item_ids`` as attached, in one set-based statement (see ``anchor.item_updates``)."""
    if not item_ids:
        return
    with Session(engine) as session:
        mark_attached(session.connection(), item_ids, utcnow())
        session.commit()
