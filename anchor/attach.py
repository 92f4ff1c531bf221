"""Attach a batch's proofs: each item's ``proof/`` files stored as objects, never in the built package.

A built package is immutable. Sealing stores every item's ``proof/proof.json`` as a small object of
its own and the batch's shared files (tokens, TSA certificates, anchors) once per batch, each under
its sha256, and records their addresses (``SealItemProof``, ``SealBatchProof``). A download puts
package and proofs together as one WACZ (``anchor.sealed_package``). Where an item has a package
file of its own (the single-user CLI), that file is replaced by its sealed form as well.

Attaching is idempotent: objects are content-addressed, an item's rows commit before it is marked
attached, and a restart after a crash mid-batch simply goes on. An anchor that confirms later adds
its file to the batch's list (and to local package files); the evidence fingerprint covers only the
manifest, so it never changes.
"""

from __future__ import annotations

import base64
import json
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeAlias

from sqlalchemy import delete, insert, select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from anchor.ethereum import verifiable_part
from anchor.item_updates import mark_attached
from anchor.sealed_package import write_sealed
from anchor.store import ItemState, SealBatch, SealBatchProof, SealItem, SealItemProof, utcnow
from verifier import merkle
from verifier.canonical import canonical_json
from verifier.package import ANCHOR_PATH, PROOF_PATH
from verifier.proof import InclusionProof
from verifier.wacz import Member

#: Items attached per committed transaction: small enough that a crash redoes little.
ATTACH_COMMIT_EVERY = 200
#: Without package files, only bookkeeping: big slices.
MARK_COMMIT_EVERY = 20_000
#: Ids per IN (...) list: under every database's parameter limit.
ID_SLICE = 1_000

#: Anchor files of a package: (path inside the package, the full anchor record).
AnchorFiles: TypeAlias = Sequence[tuple[str, dict[str, Any]]]


class ProofStore(Protocol):
    """Where proof files go: a content-addressed store (the service's blob store, local or S3)."""

    def put_bytes(self, data: bytes) -> str:
        """Store ``data`` under its sha256 and return that hex address. Idempotent; durable on return."""
        ...

    def get_bytes(self, address: str) -> bytes:
        """The bytes stored under ``address``."""
        ...


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


def proof_members(proof: InclusionProof | None, tokens: Sequence[Token],
                  anchors: AnchorFiles | dict[str, Any] | None) -> list[Member]:
    """The ``proof/`` files for one package (without ``proof`` only those all its batch shares)."""
    members = [] if proof is None else [Member(PROOF_PATH, data=canonical_json(proof.to_json()))]
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
    """Replace the package file ``package`` by its sealed form. Returns False when it already was."""
    files = _anchor_files(anchors)
    if carries_proof(package, proof.batch_id, anchor_names=[name for name, _ in files]):
        return False
    write_sealed(package, [(m.name, m.data or b"") for m in proof_members(proof, tokens, files)])
    return True


def attach_batch(engine: Engine, batch: SealBatch, files: AnchorFiles, *, store: ProofStore | None = None,
                 write_packages: bool = True, resume: bool = True,
                 renew_lease: Callable[[], object] | None = None) -> None:
    """Store every item of ``batch`` its proof files, with the anchor ``files``.

    With a ``store``, the batch's shared files are stored and listed first, then each item's
    ``proof/proof.json``; items with a package file of their own get it sealed too. ``resume``
    (the batch's first attachment): items are marked attached in committed slices, and those already
    marked are skipped, so a restart goes on where a crash stopped. Otherwise (a late anchor) only
    the shared list and the package files change, since an item's own proof does not.
    ``write_packages`` False only marks items, for benchmarks of the batch pipeline. Raises
    RuntimeError when the items no longer hash to the batch's root.
    """
    tokens = [Token(tsa=t["tsa"], token=base64.b64decode(t["token"]), chain_pem=t["chain_pem"].encode())
              for t in json.loads(batch.timestamps or "[]")]
    with Session(engine) as session:
        # Five columns: SQLAlchemy's own select (sqlmodel's is typed for up to four).
        items = session.connection().execute(
            select(col(SealItem.id), col(SealItem.evidence_id), col(SealItem.fingerprint), col(SealItem.package_path),
                   col(SealItem.state))
            .where(col(SealItem.batch_id) == batch.id).order_by(col(SealItem.leaf_index))).all()
    fingerprints = [bytes.fromhex(fp) for _, _, fp, _, _ in items]
    leaves = merkle.leaf_hashes(fingerprints)
    root = merkle.root(leaves)
    if root.hex() != batch.root:
        raise RuntimeError(f"batch {batch.id}: items no longer hash to the stored root")
    if write_packages and store is not None:
        _store_batch_files(engine, store, batch.id, tokens, files)
    # Writing proofs is slow, so commit often; bookkeeping alone can go in big slices.
    commit_every = ATTACH_COMMIT_EVERY if write_packages else MARK_COMMIT_EVERY
    done: list[int] = []
    stored: list[dict[str, str]] = []
    for index, ((item_id, evidence_id, _, package, state), path) in enumerate(
            zip(items, merkle.all_inclusion_proofs(leaves), strict=True)):
        if item_id is None or (resume and state == ItemState.ATTACHED):
            continue
        if write_packages:
            proof = InclusionProof(batch_id=batch.id, leaf=fingerprints[index], leaf_index=index,
                                   tree_size=len(items), inclusion_path=tuple(path), root=root)
            if store is not None and resume:
                stored.append({"evidence_id": evidence_id, "batch_id": batch.id,
                               "address": store.put_bytes(canonical_json(proof.to_json()))})
            if package:
                attach(Path(package), proof, tokens, files)
        if not resume:
            continue
        done.append(item_id)
        if len(done) >= commit_every:
            _record_item_proofs(engine, stored)
            _mark_attached(engine, done)
            done, stored = [], []
            if renew_lease is not None:
                renew_lease()
    _record_item_proofs(engine, stored)
    _mark_attached(engine, done)


def _store_batch_files(engine: Engine, store: ProofStore, batch_id: str, tokens: Sequence[Token],
                       files: AnchorFiles) -> None:
    """Store the batch's shared proof files and commit their list (replacing an older, shorter one)."""
    shared = [m for m in proof_members(None, tokens, files) if m.name != PROOF_PATH]
    listed = json.dumps([[m.name, store.put_bytes(m.data or b"")] for m in shared])
    with Session(engine) as session:
        row = session.get(SealBatchProof, batch_id) or SealBatchProof(batch_id=batch_id, files=listed)
        row.files, row.updated_at = listed, utcnow()
        session.add(row)
        session.commit()


def _record_item_proofs(engine: Engine, rows: Sequence[dict[str, str]]) -> None:
    """Commit where each item's proof.json is (before the items are marked: a sealed item has its row)."""
    if not rows:
        return
    with Session(engine) as session:
        for start in range(0, len(rows), ID_SLICE):
            chunk = rows[start:start + ID_SLICE]
            # A crash after this commit and before the marks repeats the slice: replace, never duplicate.
            session.connection().execute(delete(SealItemProof).where(
                col(SealItemProof.evidence_id).in_([r["evidence_id"] for r in chunk])))
            session.connection().execute(insert(SealItemProof), list(chunk))
        session.commit()


def proof_addresses(session: Session, evidence_id: str) -> list[tuple[str, str]] | None:
    """The sealed item's proof files as ``(name in the package, address)`` in package order; None if unsealed."""
    item = session.get(SealItemProof, evidence_id)
    if item is None:
        return None
    shared = session.get(SealBatchProof, item.batch_id)
    if shared is None:
        return None
    return [(PROOF_PATH, item.address), *((name, address) for name, address in json.loads(shared.files))]


def _mark_attached(engine: Engine, item_ids: Sequence[int]) -> None:
    """Commit ``item_ids`` as attached, in one set-based statement (see ``anchor.item_updates``)."""
    if not item_ids:
        return
    with Session(engine) as session:
        mark_attached(session.connection(), item_ids, utcnow())
        session.commit()
