"""Upload packages: existing files sealed as evidence (manifest kind ``upload``).

The platform did not capture these files, it only received them; the manifest says so and the
verifier's S4 warns about it. The package is still a valid WACZ: each file is a WARC ``resource``
record, so replay tools can show it.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import mimetypes
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from warcio.warcwriter import WARCWriter

from evidence.manifest import clock_source, file_artifact, new_evidence_id, tool_record
from evidence.operator_key import OperatorKey
from evidence.warc_index import ReplayIndex, cdxj_index, pages_jsonl
from verifier.capture_format import INDEX_PATH, INDEX_SUMMARY_PATH, ROLES
from verifier.errors import TiezhengError
from verifier.manifest_writer import NewManifest, UploadedFile, artifact_of_bytes, utc_iso
from verifier.package import MANIFEST_PATH, SIGNATURE_PATH, Artifact, Requester
from verifier.wacz import Member, package_metadata, write_package

MAX_UPLOAD_FILES = 100
MAX_NAME_CHARS = 100
COPY_CHUNK_BYTES = 1 << 20
#: Uploads (all files together) up to this size are packaged in memory, without a work folder.
IN_MEMORY_BYTES = 4 << 20


class UploadError(TiezhengError, ValueError):
    """An upload that cannot become evidence (missing file, too many files, ...). Still a ValueError
    for callers that catch one."""


@dataclass(frozen=True)
class _Received:
    original_name: str
    path: str
    media_type: str
    sha256: str
    size: int
    #: The bytes as received: in memory for a small upload, else a private copy in the work folder.
    copy: bytes | Path

    def artifact(self) -> Artifact:
        return Artifact(path=self.path, role="upload", media_type=self.media_type, size=self.size, sha256=self.sha256)

    def open(self) -> BinaryIO:
        return io.BytesIO(self.copy) if isinstance(self.copy, bytes) else self.copy.open("rb")

    def member(self) -> Member:
        return Member(self.path, data=self.copy) if isinstance(self.copy, bytes) else Member(self.path, path=self.copy)


@dataclass(frozen=True)
class BuiltPackage:
    evidence_id: str
    fingerprint: bytes
    path: Path


def safe_name(original: str, taken: set[str]) -> str:
    """A short ASCII, zip-safe, unique artifact file name that keeps the original's look and extension.

    The original name (any length, any script) is recorded in the manifest instead; a name made of
    other scripts only becomes ``file`` plus its extension.
    """
    base = original.replace("\\", "/").rsplit("/", 1)[-1]
    stem, dot, ext = base.rpartition(".")
    if not (dot and stem and re.fullmatch(r"[A-Za-z0-9]{1,10}", ext)):
        stem, ext = base, ""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._-")[:MAX_NAME_CHARS] or "file"
    suffix = f".{ext}" if ext else ""
    name, counter = stem + suffix, 1
    while name in taken or name in ("manifest.json", "manifest.sig"):
        counter += 1
        name = f"{stem}-{counter}{suffix}"
    taken.add(name)
    return name


def _copy_hashed(source: Path, target: Path) -> tuple[str, int]:
    # Copy first and hash the copy, so the file cannot change between hashing and packaging.
    hasher, size = hashlib.sha256(), 0
    with source.open("rb") as src, target.open("wb") as dst:
        while chunk := src.read(COPY_CHUNK_BYTES):
            hasher.update(chunk)
            size += len(chunk)
            dst.write(chunk)
    return hasher.hexdigest(), size


def _receive(file: Path, index: int, work: Path | None) -> tuple[bytes | Path, str, int]:
    """The file's bytes as packaged (read once, hashed as read), their sha256 hex and size."""
    if work is None:
        data = file.read_bytes()
        return data, hashlib.sha256(data).hexdigest(), len(data)
    copy = work / f"upload-{index}"
    sha, size = _copy_hashed(file, copy)
    return copy, sha, size


def build_upload(files: Sequence[Path], *, packages_dir: Path, operator: OperatorKey, requester: Requester,
                 note: str | None = None, names: Sequence[str] | None = None,
                 sync_folder: bool = True) -> BuiltPackage:
    """Make one signed upload package of ``files`` in ``packages_dir``. Raises UploadError.

    ``names`` are the files' original names when they differ from the names on disk (a service
    stores received files under names of its own); the manifest records them, and errors show
    them instead of the paths on disk. An upload of up to ``IN_MEMORY_BYTES`` is packaged in
    memory: small uploads, the common case, then touch the disk only to write the package. Bigger
    ones are copied to a work folder first. ``sync_folder=False`` leaves the fsync of
    ``packages_dir`` (for the package's name) to the caller.
    """
    if not files:
        raise UploadError("no files to upload")
    if len(files) > MAX_UPLOAD_FILES:
        raise UploadError(f"{len(files)} files in one upload; the limit is {MAX_UPLOAD_FILES}")
    originals = list(names) if names is not None else [file.name for file in files]
    if len(originals) != len(files):
        raise UploadError("one name per file, please")
    for file, shown in zip(files, originals if names is not None else map(str, files), strict=True):
        if file.is_dir():
            raise UploadError(f"{shown} is a directory; give the files in it")
        if not file.is_file():
            raise UploadError(f"{shown} is not a readable file")
    started = datetime.now(UTC)
    evidence_id = new_evidence_id(started)
    in_memory = sum(file.stat().st_size for file in files) <= IN_MEMORY_BYTES
    with contextlib.ExitStack() as stack:
        work = None if in_memory else Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="tiezheng-upload-")))
        taken: set[str] = set()
        uploads: list[_Received] = []
        for file, original in zip(files, originals, strict=True):
            name = safe_name(original, taken)
            copy, sha, size = _receive(file, len(uploads), work)
            media_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
            uploads.append(_Received(original, f"evidence/{name}", media_type, sha, size, copy))
        warc_member, warc_record, index = _write_warc(evidence_id, uploads, work)
        pages = pages_jsonl({"url": f"urn:tiezheng:{evidence_id}:{item.path}", "ts": utc_iso(started),
                             "title": item.original_name} for item in uploads)
        artifacts = [item.artifact() for item in uploads]
        artifacts += [warc_record,
                      artifact_of_bytes("pages/pages.jsonl", "wacz-pages", "application/x-ndjson", pages),
                      artifact_of_bytes(INDEX_PATH, ROLES[INDEX_PATH], "application/gzip", index.blocks),
                      artifact_of_bytes(INDEX_SUMMARY_PATH, ROLES[INDEX_SUMMARY_PATH], "text/plain", index.summary)]
        manifest = NewManifest(
            evidence_id=evidence_id, kind="upload", created_at=started, operator=operator.manifest_operator(),
            requester=requester, note=note or "", artifacts=artifacts,
            capture={"started_at": utc_iso(started), "ended_at": utc_iso(datetime.now(UTC)),
                     "tools": [tool_record()], "clock_source": clock_source(),
                     "method": "files received from the requester; not captured by the platform"},
            uploaded=[UploadedFile(original_name=item.original_name, path=item.path) for item in uploads])
        body = manifest.canonical_bytes
        members = [item.member() for item in uploads]
        members += [warc_member, Member("pages/pages.jsonl", data=pages),
                    Member(INDEX_PATH, data=index.blocks), Member(INDEX_SUMMARY_PATH, data=index.summary),
                    Member(MANIFEST_PATH, data=body),
                    Member(SIGNATURE_PATH, data=operator.sign_manifest(body))]
        destination = packages_dir / f"{evidence_id}.wacz"
        write_package(destination, members, package_metadata(f"Tiezheng upload {evidence_id}", started),
                      sync_folder=sync_folder)
    return BuiltPackage(evidence_id=evidence_id, fingerprint=manifest.fingerprint, path=destination)


def _write_warc(evidence_id: str, uploads: Sequence[_Received],
                work: Path | None) -> tuple[Member, Artifact, ReplayIndex]:
    """The WARC (each file one ``resource`` record) as a package member, its artifact record and index."""
    if work is None:
        buffer = io.BytesIO()
        _warc_records(buffer, evidence_id, uploads)
        data = buffer.getvalue()
        return (Member("archive/data.warc.gz", data=data),
                artifact_of_bytes("archive/data.warc.gz", "warc", "application/warc", data),
                cdxj_index(io.BytesIO(data)))
    warc_path = work / "data.warc.gz"
    with warc_path.open("wb") as out:
        _warc_records(out, evidence_id, uploads)
    return (Member("archive/data.warc.gz", path=warc_path),
            file_artifact("archive/data.warc.gz", "warc", "application/warc", warc_path), cdxj_index(warc_path))


def _warc_records(out: BinaryIO, evidence_id: str, uploads: Sequence[_Received]) -> None:
    writer = WARCWriter(out, gzip=True)
    writer.write_record(writer.create_warcinfo_record("data.warc.gz", {
        "software": f"Tiezheng {tool_record()['version']}", "format": "WARC File Format 1.1",
        "description": f"upload {evidence_id}"}))
    for item in uploads:
        with item.open() as payload:
            writer.write_record(writer.create_warc_record(
                f"urn:tiezheng:{evidence_id}:{item.path}", "resource", payload=payload,
                warc_content_type=item.media_type))
