"""The blob store: package bytes addressed by their sha256, written once and never changed.

Files live under ``<data dir>/blobs/sha256/ab/<hex>``. Storing a package hard-links it when it is on
the same file system (sealing replaces packages by rename, so the linked bytes never change) and
copies it otherwise. The database keeps only addresses; package bytes are never rebuilt from rows.
The interface (put/open/path/exists) is what an S3-compatible store would implement at scale.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import BinaryIO

CHUNK_BYTES = 1 << 20


class BlobMissing(LookupError):
    """No blob has this address."""


def _sha256_file(path: Path) -> str:
    hasher = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK_BYTES):
            hasher.update(chunk)
    return hasher.hexdigest()


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
        """Store the bytes of ``source`` and return their address. Idempotent; durable on return."""
        address = _sha256_file(source)
        target = self.path(address)
        if target.is_file():
            return address
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=".blob.", dir=target.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            tmp.unlink()
            try:
                os.link(source, tmp)
            except OSError:
                _copy_durably(source, tmp)
            # Hashing happened before linking: re-check so a file changed in between is never misfiled.
            if _sha256_file(tmp) != address:
                raise OSError(f"{source} changed while it was being stored")
            os.replace(tmp, target)
            _fsync_dir(target.parent)
        finally:
            tmp.unlink(missing_ok=True)
        return address

    def open(self, address: str) -> BinaryIO:
        try:
            return self.path(address).open("rb")
        except FileNotFoundError as exc:
            raise BlobMissing(address) from exc


def _copy_durably(source: Path, target: Path) -> None:
    with source.open("rb") as src, target.open("wb") as dst:
        while chunk := src.read(CHUNK_BYTES):
            dst.write(chunk)
        dst.flush()
        os.fsync(dst.fileno())


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
