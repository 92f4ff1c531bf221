"""A sealed package, assembled as a stream: the built package's entries, raw, then its proof files.

A built package is immutable once stored. Sealing keeps each item's ``proof/`` files as small objects
of their own (``anchor.attach``), and a sealed package is put together only when someone reads it:

1. the built package's entries are copied byte for byte (local header, data, descriptor), never
   inflated or recompressed, up to its old ``proof/`` files and ``datapackage.json``, which come last
   in every package our writers make;
2. the proof files follow, then ``datapackage.json`` (the old one's resources and metadata, plus the
   proof files) and ``datapackage-digest.json``;
3. then a fresh central directory: the old entries' records unchanged (their offsets hold, since they
   are a prefix), the new ones' records, and the end records.

The result has the one reading ``verifier.zip_layout`` demands: entries tile the file, each local
header states what its central record states, no descriptors on new entries, ZIP64 only where a
value needs it (zipfile's thresholds, as ``verifier.wacz`` writes). New entries carry the date of the
old ``datapackage.json``, so the same parts always give the same bytes, and the size is known before
the first byte is sent.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import struct
import tempfile
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from verifier.errors import InvalidPackage
from verifier.package import DATAPACKAGE_DIGEST_PATH, DATAPACKAGE_PATH, MAX_FILES
from verifier.wacz import (
    METADATA_KEYS,
    STORED_SUFFIXES,
    datapackage,
    datapackage_digest,
    fsync_dir,
)
from verifier.zip_entry import open_entry
from verifier.zip_layout import (
    CENTRAL_SIG,
    EOCD_SIG,
    FLAG_UTF8,
    LOCAL_SIG,
    ZIP64_EOCD_SIG,
    ZIP64_LOCATOR_SIG,
    ZipEntry,
    read_layout,
)

#: zipfile's thresholds: a size or offset over this, or more entries than the count limit, needs ZIP64.
ZIP64_LIMIT = zipfile.ZIP64_LIMIT
ZIP_FILECOUNT_LIMIT = zipfile.ZIP_FILECOUNT_LIMIT
PROOF_PREFIX = "proof/"
#: Reads of the tail and the local headers go in blocks of this size (one ranged request each).
BLOCK_BYTES = 256 << 10
CHUNK_BYTES = 1 << 20
MAX_DATAPACKAGE_BYTES = 16 << 20
#: New entries are small (proofs, datapackage.json), so their sizes never need ZIP64.
MAX_NEW_ENTRY_BYTES = 64 << 20
#: As zipfile writes them: made on Unix (3) by version 2.0, or 4.5 when ZIP64 is needed.
VERSION = 20
VERSION_ZIP64 = 45
MADE_ON_UNIX = 3 << 8
FILE_MODE = 0o644 << 16

_LOCAL = struct.Struct("<4sHHHHHIIIHH")
_CENTRAL = struct.Struct("<4sHHHHHHIIIHHHHHII")
_EOCD = struct.Struct("<4sHHHHIIH")
_ZIP64_EOCD = struct.Struct("<4sQHHIIQQQQ")
_ZIP64_LOCATOR = struct.Struct("<4sIQI")


class PackageSource(Protocol):
    """Random access to a built package's bytes, wherever they are stored (a file, an S3 object)."""

    def size(self) -> int: ...

    def read_range(self, start: int, end: int) -> Iterator[bytes]:
        """Bytes ``[start, end)`` in chunks; raises OSError (or a store error) when they cannot be read."""
        ...


class FileSource:
    """A package file on this host."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def size(self) -> int:
        return self.path.stat().st_size

    def read_range(self, start: int, end: int) -> Iterator[bytes]:
        with self.path.open("rb") as f:
            yield from stream_range(f, start, end, str(self.path))


def stream_range(stream: BinaryIO, start: int, end: int, name: str) -> Iterator[bytes]:
    """Bytes ``start``..``end`` of a seekable ``stream`` in chunks; OSError if it ends early."""
    stream.seek(start)
    yield from read_exactly(stream, end - start, f"{name} ends before byte {end}")


def read_exactly(stream: BinaryIO, length: int, short: str) -> Iterator[bytes]:
    """The next ``length`` bytes of ``stream`` (seekable or not) in chunks; OSError(``short``) if it ends early."""
    remaining = length
    while remaining > 0:
        chunk = stream.read(min(remaining, CHUNK_BYTES))
        if not chunk:
            raise OSError(short)
        remaining -= len(chunk)
        yield chunk


class _BlockReader(io.RawIOBase):
    """A seekable view of a source for the layout walk: whole blocks fetched once and kept."""

    def __init__(self, source: PackageSource, size: int) -> None:
        super().__init__()
        self.source, self.length, self.position = source, size, 0
        self.blocks: dict[int, bytes] = {}

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self.position, os.SEEK_END: self.length}[whence]
        self.position = base + offset
        return self.position

    def tell(self) -> int:
        return self.position

    def _block(self, number: int) -> bytes:
        block = self.blocks.get(number)
        if block is None:
            start = number * BLOCK_BYTES
            block = self.blocks[number] = b"".join(self.source.read_range(start, min(start + BLOCK_BYTES,
                                                                                     self.length)))
        return block

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        # Fill the whole request, across block boundaries: the layout walk takes a short read of a
        # raw stream for a truncated file (a central directory across a boundary was refused).
        wanted = min(len(buffer), self.length - self.position)
        done = 0
        while done < wanted:
            number, within = divmod(self.position, BLOCK_BYTES)
            piece = self._block(number)[within:within + wanted - done]
            if not piece:
                break
            buffer[done:done + len(piece)] = piece
            done += len(piece)
            self.position += len(piece)
        return done


@dataclass(frozen=True)
class _NewEntry:
    """A small entry written here: its local header and data, and its central record."""

    local: bytes
    central: bytes


@dataclass(frozen=True)
class SealedPackage:
    """The plan of one sealed package: ``size`` bytes, produced by ``chunks()``."""

    source: PackageSource
    prefix_bytes: int
    tail: bytes

    @property
    def size(self) -> int:
        return self.prefix_bytes + len(self.tail)

    def chunks(self) -> Iterator[bytes]:
        """The package's bytes: the built package's kept entries as stored, then the new tail."""
        if self.prefix_bytes:
            yield from self.source.read_range(0, self.prefix_bytes)
        yield self.tail


def _dos_time(entry_central: bytes) -> tuple[int, int]:
    fields = _CENTRAL.unpack_from(entry_central)
    return fields[5], fields[6]


def _central_records(data: bytes, count: int) -> list[bytes]:
    """Split the central directory into its ``count`` records (the layout walk has checked them)."""
    records, pos = [], 0
    for _ in range(count):
        fields = _CENTRAL.unpack_from(data, pos)
        end = pos + _CENTRAL.size + fields[10] + fields[11] + fields[12]
        records.append(data[pos:end])
        pos = end
    return records


def _encoded(name: str) -> tuple[bytes, int]:
    return (name.encode("ascii"), 0) if name.isascii() else (name.encode("utf-8"), FLAG_UTF8)


def _new_entry(name: str, data: bytes, offset: int, stamp: tuple[int, int]) -> _NewEntry:
    """One entry stored or deflated as ``verifier.wacz`` would (by name), with no descriptor."""
    raw_name, flags = _encoded(name)
    if name.endswith(STORED_SUFFIXES):
        method, body = zipfile.ZIP_STORED, data
    else:
        compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -zlib.MAX_WBITS)
        method, body = zipfile.ZIP_DEFLATED, compressor.compress(data) + compressor.flush()
    if max(len(data), len(body)) > MAX_NEW_ENTRY_BYTES:
        raise ValueError(f"{name} is far too large ({len(data)} bytes)")
    crc = zlib.crc32(data)
    time, date = stamp
    local = _LOCAL.pack(LOCAL_SIG, VERSION, flags, method, time, date, crc, len(body), len(data),
                        len(raw_name), 0) + raw_name + body
    extra, stated_offset, needed = b"", offset, VERSION
    if offset > ZIP64_LIMIT:
        extra, stated_offset, needed = struct.pack("<HHQ", 0x0001, 8, offset), 0xFFFFFFFF, VERSION_ZIP64
    central = _CENTRAL.pack(CENTRAL_SIG, MADE_ON_UNIX | needed, needed, flags, method, time, date, crc, len(body),
                            len(data), len(raw_name), len(extra), 0, 0, 0, FILE_MODE, stated_offset) + raw_name + extra
    return _NewEntry(local, central)


def _end_records(count: int, cd_offset: int, cd_size: int) -> bytes:
    """The end of central directory record, after ZIP64 end records only when a value needs them."""
    records = b""
    if count > ZIP_FILECOUNT_LIMIT or cd_offset > ZIP64_LIMIT or cd_size > ZIP64_LIMIT:
        zip64_at = cd_offset + cd_size
        records = (_ZIP64_EOCD.pack(ZIP64_EOCD_SIG, 44, MADE_ON_UNIX | VERSION_ZIP64, VERSION_ZIP64, 0, 0, count,
                                    count, cd_size, cd_offset)
                   + _ZIP64_LOCATOR.pack(ZIP64_LOCATOR_SIG, 0, zip64_at, 1))
        count, cd_offset, cd_size = min(count, 0xFFFF), min(cd_offset, 0xFFFFFFFF), min(cd_size, 0xFFFFFFFF)
    return records + _EOCD.pack(EOCD_SIG, 0, 0, count, count, cd_size, cd_offset, 0)


def _datapackage(reader: _BlockReader, entry: ZipEntry, proof_files: Sequence[tuple[str, bytes]]) -> bytes:
    """The old datapackage.json's metadata and non-proof resources, with the proof files added."""
    if entry.size > MAX_DATAPACKAGE_BYTES:
        raise InvalidPackage(f"{DATAPACKAGE_PATH} is {entry.size} bytes, over {MAX_DATAPACKAGE_BYTES}")
    with open_entry(reader, entry) as stream:  # type: ignore[arg-type]
        old = json.loads(stream.read())
    metadata = {k: v for k, v in old.items() if k in METADATA_KEYS and isinstance(v, str)}
    resources = [(r["path"], bytes.fromhex(r["hash"].removeprefix("sha256:")), int(r["bytes"]))
                 for r in old.get("resources", []) if not str(r["path"]).startswith(PROOF_PREFIX)]
    resources += [(name, hashlib.sha256(data).digest(), len(data)) for name, data in proof_files]
    return datapackage(resources, metadata)


def sealed_package(source: PackageSource, proof_files: Sequence[tuple[str, bytes]]) -> SealedPackage:
    """Plan the sealed package of ``source`` with ``proof_files`` ((name, bytes) in package order).

    Reads only the source's tail, local headers and datapackage.json. Raises InvalidPackage when the
    source does not have the one strict reading, lacks datapackage.json, or keeps entries after its
    proof files (not a layout our writers make); ValueError for a proof file outside ``proof/``.
    A source that already carries proof files has them replaced (a late anchor adds one).
    """
    for name, _ in proof_files:
        if not name.startswith(PROOF_PREFIX):
            raise ValueError(f"{name} is not a proof file")
    size = source.size()
    reader = _BlockReader(source, size)
    layout = read_layout(reader, size, max_entries=MAX_FILES)  # type: ignore[arg-type]
    entries = layout.entries
    cd_bytes = b"".join(source.read_range(layout.central_directory_offset, size))
    records = _central_records(cd_bytes, len(entries))
    replaced = [e.name.startswith(PROOF_PREFIX) or e.name in (DATAPACKAGE_PATH, DATAPACKAGE_DIGEST_PATH)
                for e in entries]
    kept = replaced.index(True) if True in replaced else len(entries)
    if not all(replaced[kept:]):
        raise InvalidPackage("entries follow the package's datapackage.json or proof files; "
                             "this is not a package Tiezheng wrote")
    by_name = {e.name: (e, r) for e, r in zip(entries, records, strict=True)}
    if DATAPACKAGE_PATH not in by_name:
        raise InvalidPackage(f"package has no {DATAPACKAGE_PATH}")
    package_entry, package_record = by_name[DATAPACKAGE_PATH]
    package_json = _datapackage(reader, package_entry, proof_files)
    stamp = _dos_time(package_record)
    offset = entries[kept].header_offset if kept < len(entries) else layout.central_directory_offset
    prefix_bytes = offset
    new_entries = []
    for name, data in [*proof_files, (DATAPACKAGE_PATH, package_json),
                       (DATAPACKAGE_DIGEST_PATH, datapackage_digest(package_json))]:
        entry = _new_entry(name, data, offset, stamp)
        new_entries.append(entry)
        offset += len(entry.local)
    central = b"".join([*records[:kept], *(e.central for e in new_entries)])
    tail = b"".join([*(e.local for e in new_entries), central,
                     _end_records(kept + len(new_entries), offset, len(central))])
    return SealedPackage(source=source, prefix_bytes=prefix_bytes, tail=tail)


def write_sealed(path: Path, proof_files: Sequence[tuple[str, bytes]]) -> None:
    """Replace the package file at ``path`` with its sealed form, atomically (temp file, fsync, rename).

    For the single-user CLI, which keeps packages as files: a crash leaves the old file or the new one.
    """
    plan = sealed_package(FileSource(path), proof_files)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            write_chunks(out, plan.chunks())
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_chunks(out: BinaryIO, chunks: Iterator[bytes]) -> int:
    """Write every chunk to ``out``; returns the byte count."""
    written = 0
    for chunk in chunks:
        out.write(chunk)
        written += len(chunk)
    return written
