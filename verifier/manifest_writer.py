"""Write manifests (format ``tiezheng/1``): the one writer, beside the reader in ``verifier.package``.

Capture and upload both build their manifest here, so the fields the reader requires, how times
are written and the bytes the fingerprint hashes all come from one place. The writer reads its own
output back with ``parse_manifest`` before handing it out: a manifest the verifier would refuse is
never signed.

The byte form is RFC 8785 (``verifier.canonical``): key order is irrelevant, so the JSON built
here may list fields in any order. Changing a field's name or value form changes every future
fingerprint; tests/verifier/test_manifest_writer.py rebuilds the committed samples byte for byte.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import IO, Any

from verifier import canonical
from verifier.errors import InvalidPackage
from verifier.package import KINDS, MANIFEST_FORMAT, Artifact, Operator, Requester, parse_manifest


def utc_iso(moment: datetime) -> str:
    """UTC with microseconds, the way every time in a package is written."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def artifact_of_bytes(path: str, role: str, media_type: str, data: bytes) -> Artifact:
    """The manifest record of a file held in memory."""
    return Artifact(path=path, role=role, media_type=media_type, size=len(data), sha256=canonical.sha256_hex(data))


def artifact_of_stream(path: str, role: str, media_type: str, stream: IO[bytes]) -> Artifact:
    """The manifest record of a file read from ``stream`` (hashed in constant memory)."""
    digest, size = canonical.sha256_stream(stream)
    return Artifact(path=path, role=role, media_type=media_type, size=size, sha256=digest.hex())


def artifact_json(artifact: Artifact) -> dict[str, Any]:
    """An artifact as the manifest (and the capture log's ``package`` step) lists it."""
    return dataclasses.asdict(artifact)


def operator_json(operator: Operator) -> dict[str, Any]:
    """The ``operator`` object; ``qualifications`` only when some are declared."""
    record: dict[str, Any] = {"name": operator.name, "key_id": operator.key_id, "public_key": operator.public_key}
    if operator.qualifications:
        record["qualifications"] = dict(operator.qualifications)
    return record


def requester_json(requester: Requester) -> dict[str, str]:
    return {"tenant": requester.tenant, "identity": requester.identity}


@dataclass(frozen=True)
class UploadedFile:
    """A file of an upload: the name it was received under and where the package holds it."""

    original_name: str
    path: str


@dataclass(frozen=True)
class NewManifest:
    """A manifest about to be signed. ``capture`` and ``target`` are the free-form records the
    capture or upload states (browser, tools, clock, redirects...); everything else is typed."""

    evidence_id: str
    kind: str
    created_at: datetime
    operator: Operator
    requester: Requester
    artifacts: Sequence[Artifact]
    capture: Mapping[str, Any]
    note: str = ""
    target: Mapping[str, Any] = field(default_factory=dict)
    #: Only for kind ``upload``: what each received file was called.
    uploaded: Sequence[UploadedFile] | None = None
    #: A capture's links (each written only when set): the matter it was filed under when made, the
    #: seller or shop it is about, the watch it is a run of, and that watch's previous capture.
    matter: str | None = None
    subject: str | None = None
    watch: str | None = None
    previous: bytes | None = None
    #: Only for kind ``notice``: the notice record, its completeness per rule set and the delivery facts.
    notice: Mapping[str, Any] | None = None
    #: Only for kind ``notice-reply``: the notice answered, and the DKIM result and DNS record at import.
    reply: Mapping[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        """The manifest as JSON data, ``format`` included."""
        data: dict[str, Any] = {
            "format": MANIFEST_FORMAT,
            "evidence_id": self.evidence_id,
            "kind": self.kind,
            "created_at": utc_iso(self.created_at),
            "operator": operator_json(self.operator),
            "requester": requester_json(self.requester),
            "note": self.note,
            "target": dict(self.target),
            "capture": dict(self.capture),
            "artifacts": [artifact_json(a) for a in self.artifacts],
        }
        if self.uploaded is not None:
            data["upload"] = {"files": [dataclasses.asdict(f) for f in self.uploaded]}
        if self.notice is not None:
            data["notice"] = dict(self.notice)
        if self.reply is not None:
            data["reply"] = dict(self.reply)
        links = {"matter": self.matter, "subject": self.subject, "watch": self.watch,
                 "previous": self.previous.hex() if self.previous is not None else None}
        data.update({key: value for key, value in links.items() if value is not None})
        return data

    @cached_property
    def canonical_bytes(self) -> bytes:
        """The bytes of ``evidence/manifest.json``: what is signed and hashed.

        Raises InvalidPackage when the result is not a manifest the reader accepts (unknown kind,
        a path listed twice, a value RFC 8785 cannot encode, ...).
        """
        if self.kind not in KINDS:
            raise InvalidPackage(f"manifest kind {self.kind!r} is not one of {', '.join(KINDS)}")
        if (self.uploaded is not None) != (self.kind == "upload"):
            raise InvalidPackage("an upload manifest names its uploaded files, and only an upload manifest does")
        if ((self.notice is not None) != (self.kind == "notice")
                or (self.reply is not None) != (self.kind == "notice-reply")):
            raise InvalidPackage("a notice manifest carries its notice record, a notice-reply manifest its reply "
                                 "record, and no other manifest either")
        body = canonical.canonical_json(self.to_json())
        parse_manifest(body)
        return body

    @property
    def fingerprint(self) -> bytes:
        """The evidence fingerprint: sha256 of ``canonical_bytes``."""
        return canonical.sha256(self.canonical_bytes)
