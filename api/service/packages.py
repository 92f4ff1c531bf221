"""Which bytes answer for an evidence item: the sealed package once sealing attached its proofs, else as accepted."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from anchor.store import SealItem
from api.service import crud, jobs
from api.service.blobs import CHUNK_BYTES, BlobStore
from api.service.errors import ApiError
from api.service.models import Evidence, EvidenceStatus
from api.service.state import ServiceState


def current_package(state: ServiceState, evidence: Evidence, item: SealItem | None) -> str:
    """The blob address of the newest package bytes: sealed once sealing attached proofs, else as accepted."""
    status = crud.status_of(evidence, item)
    if status is EvidenceStatus.SEALED and item is not None and evidence.sealed_sha256 is None:
        # The sealer finished before the record job ran: record it now (idempotent).
        try:
            return jobs.record_sealed(state.engine, state.blobs, row_id=evidence.id, tenant_id=evidence.tenant_id,
                                      package_path=Path(item.package_path), batch_id=item.batch_id)
        except FileNotFoundError:
            # Scaled out, the sealed file is on the sealer's host until its record job stores it.
            raise ApiError(409, "not_ready", "the sealed package is being stored; try again shortly") from None
    stored = evidence.sealed_sha256 or evidence.package_sha256
    if stored is None:
        raise ApiError(409, "not_ready", "the package is not built yet; poll the evidence status")
    return stored


@contextlib.contextmanager
def package_file(state: ServiceState, address: str) -> Iterator[Path]:
    """The package as a local file: the blob itself in a local store, else a temporary copy (removed after)."""
    if isinstance(state.blobs, BlobStore):
        yield state.blobs.path(address)
        return
    state.settings.tmp_dir.mkdir(parents=True, exist_ok=True)
    with state.blobs.open(address) as stream, \
            tempfile.NamedTemporaryFile(dir=state.settings.tmp_dir, prefix=".package.", suffix=".wacz") as copy:
        shutil.copyfileobj(stream, copy, CHUNK_BYTES)
        copy.flush()
        yield Path(copy.name)
