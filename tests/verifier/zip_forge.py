"""Byte surgery on genuine zips, and two independent ways of reading one, for the zip-layout tests.

Nothing here uses ``verifier``: the records are located with ``zipfile``'s own offsets and plain
struct reads, so a bug in the reader under test cannot hide itself in the forgeries. The two
readers model the two families of zip tools a court may meet: those that trust the central
directory (``zipfile``, ``unzip -l``, most desktop tools) and those that stream local headers from
the first byte (Java's ``ZipInputStream``, many upload scanners, ``zipfile``-style streaming).
"""

from __future__ import annotations

import hashlib
import io
import struct
import subprocess
import zipfile
import zlib
from dataclasses import dataclass

EOCD_SIZE = 22
#: Field offsets inside a local header (LH) and a central-directory entry (CD), from APPNOTE 4.3.7/4.3.12.
LH = {"flags": 6, "method": 8, "time": 10, "crc": 14, "csize": 18, "size": 22, "name_len": 26, "extra_len": 28}
CD = {"flags": 8, "method": 10, "crc": 16, "csize": 20, "size": 24, "name_len": 28, "extra_len": 30,
      "comment_len": 32, "external": 38, "offset": 42}
WIDTH = {"flags": "<H", "method": "<H", "time": "<H", "crc": "<I", "csize": "<I", "size": "<I", "name_len": "<H",
         "extra_len": "<H", "comment_len": "<H", "external": "<I", "offset": "<I"}


@dataclass(frozen=True)
class Record:
    name: str
    local: int
    central: int


def records(data: bytes) -> tuple[list[Record], int]:
    """Each entry's local-header and central-entry positions, and the central directory's offset."""
    cd_offset = struct.unpack_from("<I", data, len(data) - EOCD_SIZE + 16)[0]
    result, pos = [], cd_offset
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for info in archive.infolist():
            assert data[pos:pos + 4] == b"PK\x01\x02"
            result.append(Record(info.filename, info.header_offset, pos))
            n, m, k = struct.unpack_from("<HHH", data, pos + 28)
            pos += 46 + n + m + k
    return result, cd_offset


def find(data: bytes, name: str) -> Record:
    return next(r for r in records(data)[0] if r.name == name)


def read_field(data: bytes, at: int, table: dict[str, int], field: str) -> int:
    return int(struct.unpack_from(WIDTH[field], data, at + table[field])[0])


def set_field(data: bytes, at: int, table: dict[str, int], field: str, value: int) -> bytes:
    out = bytearray(data)
    struct.pack_into(WIDTH[field], out, at + table[field], value)
    return bytes(out)


def local_zip64_extra(data: bytes, record: Record) -> int | None:
    """Position of the ZIP64 extra payload in the local header of ``record``, if it has one."""
    n, m = struct.unpack_from("<HH", data, record.local + 26)
    pos, end = record.local + 30 + n, record.local + 30 + n + m
    while pos < end:
        ident, length = struct.unpack_from("<HH", data, pos)
        if ident == 1:
            return pos + 4
        pos += 4 + length
    return None


def insert(data: bytes, at: int, blob: bytes) -> bytes:
    """Insert ``blob`` at ``at`` and shift every offset that points past it, so only the insertion differs."""
    entries, cd_offset = records(data)
    out = bytearray(data[:at] + blob + data[at:])
    shift = len(blob)
    for record in entries:
        if record.local >= at:
            central = record.central + shift if record.central >= at else record.central
            struct.pack_into("<I", out, central + CD["offset"], record.local + shift)
    if cd_offset >= at:
        struct.pack_into("<I", out, len(out) - EOCD_SIZE + 16, cd_offset + shift)
    return bytes(out)


def deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


class _Unseekable(io.RawIOBase):
    """A write-only sink without tell/seek: zipfile then writes data descriptors."""

    def __init__(self) -> None:
        self.buffer = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.buffer += data
        return len(data)

    def tell(self) -> int:
        raise OSError("unseekable")


def with_data_descriptors(data: bytes) -> bytes:
    """The same files rewritten by zipfile in streaming mode: every entry deflated, with a data descriptor."""
    sink = _Unseekable()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(sink, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            target.writestr(zipfile.ZipInfo(info.filename, info.date_time), source.read(info),
                            zipfile.ZIP_DEFLATED)
    return bytes(sink.buffer)


def central_view(data: bytes) -> list[tuple[str, str]] | str:
    """What a central-directory reader (zipfile) shows: ``[(name, sha256)]``, or its error."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return [(i.filename, hashlib.sha256(archive.read(i)).hexdigest()) for i in archive.infolist()]
    except Exception as exc:  # any failure is that reader's answer
        return f"error: {type(exc).__name__}"


def stream_view(data: bytes) -> list[tuple[str, str]] | str:
    """What a streaming reader shows: local headers walked from offset 0 until one is missing, each
    entry's CRC and size checked against its local header or data descriptor."""
    pos, seen = 0, []
    try:
        while data[pos:pos + 4] == b"PK\x03\x04":
            flags, method, _, _, crc, csize, size, n, m = struct.unpack_from("<HHHHIIIHH", data, pos + 6)
            name = data[pos + 30:pos + 30 + n].decode("utf-8", "replace")
            start = pos + 30 + n + m
            if csize == 0xFFFFFFFF:
                extra = local_zip64_extra(data, Record(name, pos, -1))
                size, csize = struct.unpack_from("<QQ", data, extra) if extra is not None else (size, csize)
            if flags & 0x08:
                inflater = zlib.decompressobj(-zlib.MAX_WBITS)
                content = inflater.decompress(data[start:])
                end = len(data) - len(inflater.unused_data)
                skip = 4 if data[end:end + 4] == b"PK\x07\x08" else 0
                crc, csize, size = struct.unpack_from("<III", data, end + skip)
                end += skip + 12
            else:
                payload = data[start:start + csize]
                content = zlib.decompress(payload, -zlib.MAX_WBITS) if method == 8 else payload
                end = start + csize
            # Like java.util.zip.ZipInputStream: the local header's (or descriptor's) CRC and size are checked.
            if zlib.crc32(content) != crc or len(content) != size:
                return f"error: invalid entry CRC or size ({name})"
            seen.append((name, hashlib.sha256(content).hexdigest()))
            pos = end
    except (zlib.error, struct.error) as exc:
        return f"error: {type(exc).__name__}"
    return seen


def unzip_test(path: str) -> int:
    """Info-ZIP ``unzip -t``: 0 clean, 1 warnings (e.g. extra bytes), 2+ errors."""
    return subprocess.run(["unzip", "-tqq", path], capture_output=True, timeout=60, check=False).returncode
