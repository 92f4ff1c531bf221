"""Which bytes answer for an evidence item: the sealed package once its proofs are stored, else as accepted.

A built package is an immutable blob. Sealing stores each item's proof files as blobs of their own
and records their addresses (anchor/attach.py), so no process needs a file another one wrote: any
API process, with any data dir or none, streams the sealed package from the blob store by putting
the two together as it sends them (anchor/sealed_package.py). The same parts always give the same
bytes; their sha256 is recorded once per item (``Evidence.sealed_sha256``), and again when a late
anchor adds a file, for the evidence view and the download's ETag.

Evidence sealed before proofs were objects has no proof rows: its sealed package is one whole blob
(``sealed_sha256``), served as it is.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine
from sqlmodel import Session

from anchor.attach import proof_addresses
from anchor.sealed_package import sealed_package
from anchor.store import ItemState, SealItem
from api.service import crud
from api.service.blobs import BlobBackend, BlobStore
from api.service.errors import ApiError
from api.service.models import Evidence

if TYPE_CHECKING:
    from api.service.state import ServiceState  # state -> jobs -> here: only a type


class BlobSource:
    """One stored package as the assembly reads it: its size and byte ranges."""

    def __init__(self, blobs: BlobBackend, address: str) -> None:
        self.blobs, self.address = blobs, address

    def size(self) -> int:
        return self.blobs.size(self.address)

    def read_range(self, start: int, end: int) -> Iterator[bytes]:
        return self.blobs.read_range(self.address, start, end)


@dataclass(frozen=True)
class PackageBytes:
    """A package ready to send: ``size`` bytes from ``chunks()``; ``sha256`` when it is known already."""

    size: int
    chunks: Callable[[], Iterator[bytes]]
    sha256: str | None
    #: The blob holding exactly these bytes, when there is one (a local store sends it as a file).
    address: str | None = None


def stored(blobs: BlobBackend, address: str) -> PackageBytes:
    """A package that is one blob, as it is stored. Raises BlobMissing."""
    size = blobs.size(address)
    return PackageBytes(size=size, chunks=lambda: blobs.read_range(address, 0, size), sha256=address, address=address)


def sealed(blobs: BlobBackend, package_address: str, proofs: list[tuple[str, str]],
           sha256: str | None = None) -> PackageBytes:
    """The sealed package of ``package_address`` with the proof blobs ``proofs`` ((name, address)).

    Reads the package's tail and the small proof blobs now, so a missing or damaged part is an error
    before the first byte is sent. Raises BlobMissing, InvalidPackage.
    """
    plan = sealed_package(BlobSource(blobs, package_address), [(name, blobs.get_bytes(a)) for name, a in proofs])
    return PackageBytes(size=plan.size, chunks=plan.chunks, sha256=sha256)


def current(session: Session, blobs: BlobBackend, evidence: Evidence, item: SealItem | None) -> PackageBytes | None:
    """The newest package of ``evidence``: sealed once its item is attached, else as accepted; None before
    one is built. Raises BlobMissing."""
    if evidence.package_sha256 is None:
        return None
    if item is not None and item.state == ItemState.ATTACHED and evidence.evidence_id is not None:
        proofs = proof_addresses(session, evidence.evidence_id)
        if proofs is not None:
            return sealed(blobs, evidence.package_sha256, proofs, evidence.sealed_sha256)
        if evidence.sealed_sha256 is not None:
            return stored(blobs, evidence.sealed_sha256)  # sealed before proofs were objects: one blob
    return stored(blobs, evidence.package_sha256)


def digest(package: PackageBytes) -> str:
    """The sha256 hex of the package's bytes (read once when it is not known)."""
    if package.sha256 is not None:
        return package.sha256
    hasher = hashlib.sha256()
    for chunk in package.chunks():
        hasher.update(chunk)
    return hasher.hexdigest()


def record_sealed(engine: Engine, blobs: BlobBackend, *, row_id: str, again: bool = False) -> str:
    """Record the sha256 of the sealed package as downloads send it (idempotent); returns it.

    The package is put together from the stored package and its proof blobs and hashed as it
    streams: nothing is written, and any process with the blob store can do it. ``again`` replaces
    a recorded value (a late anchor added a file).
    """
    with Session(engine) as session:
        found = crud.evidence_with_item(session, row_id=row_id)
        package = None if found is None else current(session, blobs, *found)
    if found is None or package is None:
        raise LookupError(f"no built package for evidence {row_id}")
    evidence, item = found
    sha256 = digest(dataclasses.replace(package, sha256=None))  # hashed anew, never taken as recorded
    with Session(engine) as session:
        row = session.get(Evidence, row_id)
        if row is not None and (row.sealed_sha256 is None or (again and row.sealed_sha256 != sha256)):
            row.sealed_sha256 = sha256
            session.add(row)
            detail = {"batch_id": item.batch_id if item else None, "package_sha256": sha256}
            crud.record_audit(session, action="evidence.sealed", actor="sealer", tenant_id=evidence.tenant_id,
                              target=row_id, detail=detail)
            session.commit()
    return sha256


def current_package(state: ServiceState, session: Session, evidence: Evidence, item: SealItem | None) -> PackageBytes:
    """The package a reader gets now. Raises ApiError 409 before one is built."""
    package = current(session, state.blobs, evidence, item)
    if package is None:
        raise ApiError(409, "not_ready", "the package is not built yet; poll the evidence status")
    if package.sha256 is None:
        # Sealed before the record job ran: record it now (idempotent), so the view and ETag agree.
        sha256 = record_sealed(state.engine, state.blobs, row_id=evidence.id)
        package = dataclasses.replace(package, sha256=sha256)
    return package


@contextlib.contextmanager
def package_file(state: ServiceState, package: PackageBytes) -> Iterator[Path]:
    """The package as a local file: the blob itself in a local store, else a temporary copy (removed after)."""
    if package.address is not None and isinstance(state.blobs, BlobStore):
        yield state.blobs.path(package.address)
        return
    state.settings.tmp_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=state.settings.tmp_dir, prefix=".package.", suffix=".wacz") as copy:
        for chunk in package.chunks():
            copy.write(chunk)
        copy.flush()
        yield Path(copy.name)
