"""The one manifest writer: it writes what the reader reads, and the bytes it always wrote."""

from __future__ import annotations

import json
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from verifier.canonical import canonical_json
from verifier.errors import InvalidPackage
from verifier.manifest_writer import NewManifest, UploadedFile, artifact_of_bytes
from verifier.package import MANIFEST_PATH, Artifact, Operator, Requester, parse_manifest
from verifier.qualifications import parse_qualifications

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "packages"
STARTED = datetime(2026, 3, 1, 9, 30, 0, 123456, tzinfo=UTC)
OPERATOR = Operator("Tiezheng test operator", "ed25519:0011", "AAAA",
                    qualifications=parse_qualifications({"icp_filing": "京ICP备00000000号"}))
REQUESTER = Requester("acme-rights", "counsel@acme.example")
ARTIFACTS = (artifact_of_bytes("evidence/screenshot.png", "screenshot", "image/png", b"\x89PNG"),
             artifact_of_bytes("archive/data.warc.gz", "warc", "application/warc", b"warc"))
CAPTURE = {"started_at": "2026-03-01T09:30:00.123456Z", "ended_at": "2026-03-01T09:30:02.000000Z",
           "tools": [{"name": "tiezheng", "version": "1"}], "log_head": "ab" * 32}


def _rebuild(manifest: dict[str, Any]) -> NewManifest:
    """The writer's input for a manifest that exists: what capture or upload would have passed."""
    parsed = parse_manifest(canonical_json(manifest))
    operator = manifest["operator"]
    uploaded = manifest.get("upload")
    return NewManifest(
        evidence_id=parsed.evidence_id, kind=parsed.kind,
        created_at=datetime.fromisoformat(manifest["created_at"]),
        operator=Operator(operator["name"], operator["key_id"], operator["public_key"],
                          qualifications=parse_qualifications(operator.get("qualifications"))),
        requester=parsed.requester, artifacts=parsed.artifacts, capture=manifest["capture"],
        note=manifest["note"], target=manifest["target"],
        uploaded=None if uploaded is None else [UploadedFile(**f) for f in uploaded["files"]])


@pytest.mark.parametrize("sample", ["good-capture.wacz", "good-upload.wacz"])
def test_the_writer_rebuilds_the_committed_samples_byte_for_byte(sample: str) -> None:
    with zipfile.ZipFile(SAMPLES / sample) as archive:
        committed = archive.read(MANIFEST_PATH)
    rebuilt = _rebuild(json.loads(committed))
    assert rebuilt.canonical_bytes == committed


def test_what_the_writer_writes_the_reader_reads_back() -> None:
    written = NewManifest(evidence_id="tz-1", kind="web-capture", created_at=STARTED, operator=OPERATOR,
                          requester=REQUESTER, artifacts=ARTIFACTS, capture=CAPTURE, note="n",
                          target={"requested_url": "https://example.test/"})
    read = parse_manifest(written.canonical_bytes)
    assert (read.evidence_id, read.kind, read.requester, read.artifacts) == ("tz-1", "web-capture", REQUESTER,
                                                                             ARTIFACTS)
    assert read.data["created_at"] == "2026-03-01T09:30:00.123456Z"
    assert read.data["operator"]["qualifications"] == {"icp_filing": "京ICP备00000000号"}
    assert "upload" not in read.data


def test_the_writer_refuses_what_the_reader_would_refuse() -> None:
    twice = (*ARTIFACTS, ARTIFACTS[0])
    with pytest.raises(InvalidPackage, match="same artifact path twice"):
        _ = NewManifest(evidence_id="tz-1", kind="web-capture", created_at=STARTED, operator=OPERATOR,
                        requester=REQUESTER, artifacts=twice, capture=CAPTURE).canonical_bytes
    with pytest.raises(InvalidPackage, match="kind 'video'"):
        _ = NewManifest(evidence_id="tz-1", kind="video", created_at=STARTED, operator=OPERATOR,
                        requester=REQUESTER, artifacts=ARTIFACTS, capture=CAPTURE).canonical_bytes
    with pytest.raises(InvalidPackage, match="uploaded files"):
        _ = NewManifest(evidence_id="tz-1", kind="upload", created_at=STARTED, operator=OPERATOR,
                        requester=REQUESTER, artifacts=ARTIFACTS, capture=CAPTURE).canonical_bytes


def test_an_artifact_record_is_path_role_type_size_and_sha256_hex() -> None:
    artifact = artifact_of_bytes("evidence/a.txt", "upload", "text/plain", b"abc")
    assert artifact == Artifact("evidence/a.txt", "upload", "text/plain", 3,
                                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
