"""A package as readers get it: the stored built package, sealed on the fly with its proof objects.

A built package is an immutable blob. Sealing stores each item's proof files as blobs of their own
and records their addresses (anchor/attach.py), so no process needs a file another one wrote: any
API process, with any data dir or none, streams the sealed package from the blob store by putting
the two together (anchor/sealed_package.py). The same parts always give the same bytes, whose
sha256 is recorded once (``Evidence.sealed_sha256``, the ETag of later downloads).

Evidence sealed before proofs were objects has no proof rows; its sealed package is a whole blob
(``sealed_sha256``), served as it is.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from sqlmodel import Session

from anchor.attach import proof_addresses
from anchor.sealed_package import sealed_package
from anchor.store import ItemState, SealItem
from api.blobs import BlobBackend
from api.models import Evidence


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
    #: The blob holding exactly these bytes, when there is one (a local store can send it as a file).
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
    """The sha256 hex of the package's bytes (reads them once when it is not known)."""
    if package.sha256 is not None:
        return package.sha256
    hasher = hashlib.sha256()
    for chunk in package.chunks():
        hasher.update(chunk)
    return hasher.hexdigest()
