"""The blob store: package bytes addressed by their sha256, written once and never changed.

Files live under ``<data dir>/blobs/sha256/ab/<hex>``. Storing a package hard-links it when it is on
the same file system and copies it otherwise; a stored package is never changed (sealing stores its
proof files as blobs of their own, see anchor/attach.py). The database keeps only addresses.
``BlobBackend`` is what every store offers: whole files and small byte strings in, whole streams,
ranges and small byte strings out. ``api.service.runtime.blob_store`` picks this one or the
S3-compatible ``api.service.blobs_s3.S3BlobStore`` (``TIEZHENG_BLOB_URL=s3://bucket/prefix``), which
every process of a scaled-out service shares instead of a file system. Only the local store has ``path``.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Protocol

from anchor.sealed_package import stream_range
from verifier.errors import TiezhengError
from verifier.wacz import fsync_dir

CHUNK_BYTES = 1 << 20


class BlobMissing(TiezhengError, LookupError):
    """No blob has ``address``. Still a LookupError for callers that catch one."""

    def __init__(self, address: str) -> None:
        super().__init__(address)
        self.address = address

    def diagnostics(self) -> str:
        return f"no blob has the address {self.address}"


def _sha256_file(path: Path) -> str:
    hasher = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK_BYTES):
            hasher.update(chunk)
    return hasher.hexdigest()


class BlobBackend(Protocol):
    """A content-addressed store of package bytes: written once under their sha256, never changed."""

    def exists(self, address: str) -> bool: ...

    def put_file(self, source: Path) -> str:
        """Store the bytes of ``source``; return their sha256 hex address. Idempotent; durable on return."""
        ...

    def open(self, address: str) -> BinaryIO:
        """A readable stream of the blob's bytes. Raises BlobMissing."""
        ...

    def put_bytes(self, data: bytes) -> str:
        """Store a small byte string (a proof file); as ``put_file``."""
        ...

    def get_bytes(self, address: str) -> bytes:
        """A small blob's bytes. Raises BlobMissing."""
        ...

    def size(self, address: str) -> int:
        """The blob's length in bytes. Raises BlobMissing."""
        ...

    def read_range(self, address: str, start: int, end: int) -> Iterator[bytes]:
        """Bytes ``[start, end)`` of the blob, in chunks. Raises BlobMissing."""
        ...


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root / "sha256"

    def path(self, address: str) -> Path:
        if len(address) != 64 or any(c not in "0123456789abcdef" for c in address):
            raise BlobMissing(address)
        return self.root / address[:2] / address

    def exists(self, address: str) -> bool:
        try:
            return self.path(address).is_file()
        except BlobMissing:
            return False

    def put_file(self, source: Path) -> str:
        """Store the bytes of ``source`` and return their address. Idempotent; durable on return.

        The bytes are linked (or copied) to a private name first and hashed there, once: the address
        is the hash of exactly what is then renamed into place. A linked source shares its bytes
        with the blob, so sources must not change afterwards (packages are replaced by rename).
        """
        incoming = self.root.parent / "incoming"
        incoming.mkdir(parents=True, exist_ok=True)
        tmp = incoming / f".blob.{uuid.uuid4().hex}"
        try:
            try:
                os.link(source, tmp)
                address = _sha256_file(tmp)
            except OSError:
                address = _copy_durably(source, tmp)
            target = self.path(address)
            if target.is_file():
                return address
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, target)
            fsync_dir(target.parent)
        finally:
            tmp.unlink(missing_ok=True)
        return address

    def open(self, address: str) -> BinaryIO:
        try:
            return self.path(address).open("rb")
        except FileNotFoundError as exc:
            raise BlobMissing(address) from exc

    def put_bytes(self, data: bytes) -> str:
        """Store ``data`` and return its address. Idempotent; durable on return."""
        address = hashlib.sha256(data).hexdigest()
        target = self.path(address)
        if target.is_file():
            return address
        incoming = self.root.parent / "incoming"
        incoming.mkdir(parents=True, exist_ok=True)
        tmp = incoming / f".blob.{uuid.uuid4().hex}"
        try:
            with tmp.open("wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, target)
            fsync_dir(target.parent)
        finally:
            tmp.unlink(missing_ok=True)
        return address

    def get_bytes(self, address: str) -> bytes:
        with self.open(address) as stream:
            return stream.read()

    def size(self, address: str) -> int:
        try:
            return self.path(address).stat().st_size
        except FileNotFoundError as exc:
            raise BlobMissing(address) from exc

    def read_range(self, address: str, start: int, end: int) -> Iterator[bytes]:
        with self.open(address) as stream:
            yield from stream_range(stream, start, end, f"blob {address}")


def _copy_durably(source: Path, target: Path) -> str:
    """Copy ``source`` to ``target`` and fsync it; returns the sha256 hex of the bytes copied."""
    hasher = hashlib.sha256()
    with source.open("rb") as src, target.open("wb") as dst:
        while chunk := src.read(CHUNK_BYTES):
            hasher.update(chunk)
            dst.write(chunk)
        dst.flush()
        os.fsync(dst.fileno())
    return hasher.hexdigest()
