"""Build a ``log-export`` package: disclosed events with their proofs, signed by the operator.

What the export proves rests on the anchored checkpoint, not on the export itself: its ``proof/``
files are the sealing proof of that checkpoint (copied from the checkpoint's sealed package), and
the manifest, signed by the operator, lists the events, both checkpoints and the consistency
proof between them (DESIGN.md §4, kind ``log-export``; checks L1-L4).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from evidence.operator_key import OperatorKey
from evidence.upload import BuiltPackage
from verifier.canonical import canonical_json
from verifier.event_log import (
    AGGREGATES_PATH,
    ANCHORED_CHECKPOINT_PATH,
    CHECKPOINT_PATH,
    CONSISTENCY_FORMAT,
    CONSISTENCY_PATH,
    EVENTS_PATH,
    LOG_EXPORT_KIND,
    canonical,
)
from verifier.manifest_writer import NewManifest, artifact_of_bytes, utc_iso
from verifier.package import MANIFEST_PATH, SIGNATURE_PATH, Requester
from verifier.wacz import Member, package_metadata, write_package


@dataclass(frozen=True)
class LogExportInput:
    origin: str
    #: One ``verifier.event_log.disclose`` record per event, each with its ``inclusion`` path (hex).
    records: Sequence[Mapping[str, Any]]
    checkpoint: bytes
    checkpoint_time: datetime
    anchored_checkpoint: bytes
    anchored_time: datetime
    consistency: Sequence[bytes]
    #: The anchored checkpoint's ``proof/`` files: name -> bytes.
    proof_files: Mapping[str, bytes]
    filter_text: str
    fields: Sequence[str] | None
    aggregates: Mapping[str, Any] | None = None


def new_export_id(moment: datetime) -> str:
    return f"log-{moment.strftime('%Y%m%dT%H%M%SZ')}-{uuid.uuid4().hex[:12]}"


def build_log_export(export: LogExportInput, *, packages_dir: Path, operator: OperatorKey,
                     requester: Requester) -> BuiltPackage:
    """Write the export package in ``packages_dir``. Raises SignerError when signing fails."""
    made = datetime.now(UTC)
    evidence_id = new_export_id(made)
    files: list[tuple[str, str, str, bytes]] = [  # path, role, media type, bytes
        (EVENTS_PATH, "log-events", "application/x-ndjson",
         b"".join(canonical(dict(r)) + b"\n" for r in export.records)),
        (CHECKPOINT_PATH, "log-checkpoint", "text/plain; charset=utf-8", export.checkpoint),
        (ANCHORED_CHECKPOINT_PATH, "log-anchored-checkpoint", "text/plain; charset=utf-8", export.anchored_checkpoint),
        (CONSISTENCY_PATH, "log-consistency", "application/json",
         canonical_json({"format": CONSISTENCY_FORMAT, "consistency": [h.hex() for h in export.consistency]})),
    ]
    if export.aggregates is not None:
        files.append((AGGREGATES_PATH, "log-aggregates", "application/json", canonical_json(dict(export.aggregates))))
    manifest = NewManifest(
        evidence_id=evidence_id, kind=LOG_EXPORT_KIND, created_at=made, operator=operator.manifest_operator(),
        requester=requester, artifacts=[artifact_of_bytes(*file) for file in files],
        # What was fixed in time is the anchored checkpoint: the export's times are the checkpoints'.
        capture={"started_at": utc_iso(export.checkpoint_time), "ended_at": utc_iso(export.anchored_time),
                 "method": "events recorded by an append-only log, disclosed from it with proofs"},
        target={"log": export.origin, "filter": export.filter_text,
                "fields": list(export.fields) if export.fields is not None else "all",
                "events": len(export.records)},
        note=f"{len(export.records)} events of log {export.origin}")
    body = manifest.canonical_bytes
    members = [Member(path, data=data) for path, _, _, data in files]
    members += [Member(MANIFEST_PATH, data=body), Member(SIGNATURE_PATH, data=operator.sign_manifest(body))]
    members += [Member(name, data=data) for name, data in sorted(export.proof_files.items())]
    packages_dir.mkdir(parents=True, exist_ok=True)
    destination = packages_dir / f"{evidence_id}.wacz"
    write_package(destination, members, package_metadata(f"Tiezheng log export {evidence_id}", made))
    return BuiltPackage(evidence_id=evidence_id, fingerprint=manifest.fingerprint, path=destination)
