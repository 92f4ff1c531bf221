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
from pathlib import Path

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


def sparse_bomb(path: Path, *, entries: int = 3, size: int = 2 << 30, manifest: bytes = b"{}") -> Path:
    """Write a valid zip of ``entries`` deflated entries of ``size`` zero bytes each, at a ratio near 160:1.

    Fixed-Huffman deflate of zeros with a full flush per MiB makes every MiB the same independent
    block, so the stream is one block repeated, and the ratio stays under a 200:1 bomb check. The
    CRC is computed for real: any zip reader inflates these to ``size`` zeros.
    """
    chunk_size = 1 << 20
    assert size % chunk_size == 0
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS, 9, zlib.Z_FIXED)
    block = compressor.compress(bytes(chunk_size)) + compressor.flush(zlib.Z_FULL_FLUSH)
    final = compressor.flush(zlib.Z_FINISH)
    compressed = len(block) * (size // chunk_size) + len(final)
    crc, zeros = 0, bytes(chunk_size)
    for _ in range(size // chunk_size):
        crc = zlib.crc32(zeros, crc)
    members = [("evidence/manifest.json", 8, zlib.crc32(manifest), deflate(manifest), len(manifest))]
    central, offset = bytearray(), 0
    with path.open("wb") as out:
        for index in range(entries + 1):
            if index == 0:
                name, method, entry_crc, data, entry_size = members[0]
                payloads: list[tuple[bytes, int]] = [(data, 1)]
                entry_compressed = len(data)
            else:
                name, method, entry_crc, entry_size = f"evidence/zeros-{index}.bin", 8, crc, size
                payloads = [(block, size // chunk_size), (final, 1)]
                entry_compressed = compressed
            raw = name.encode()
            fields = (20, 0, method, 0, 0x21, entry_crc, entry_compressed, entry_size, len(raw), 0)
            out.write(struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", *fields) + raw)
            for payload, times in payloads:
                for _ in range(times):
                    out.write(payload)
            central += struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 20, *fields, 0, 0, 0, 0o644 << 16,
                                   offset) + raw
            offset += 30 + len(raw) + entry_compressed
        out.write(central)
        out.write(struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, entries + 1, entries + 1, len(central), offset, 0))
    return path


def with_zip64_end(data: bytes, *, sentinels: bool = True) -> bytes:
    """The same archive ended by a ZIP64 EOCD and locator before the EOCD (what large-archive writers emit).

    With ``sentinels`` the classic EOCD carries 0xFFFF/0xFFFFFFFF and readers must take the ZIP64
    values; without, it repeats them.
    """
    eocd = len(data) - EOCD_SIZE
    _, _, _, on_disk, total, cd_size, cd_offset, _ = struct.unpack_from("<4sHHHHIIH", data, eocd)
    z64 = struct.pack("<4sQHHIIQQQQ", b"PK\x06\x06", 44, 45, 45, 0, 0, on_disk, total, cd_size, cd_offset)
    locator = struct.pack("<4sIQI", b"PK\x06\x07", 0, eocd, 1)
    if sentinels:
        on_disk = total = 0xFFFF
        cd_size = cd_offset = 0xFFFFFFFF
    end = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, on_disk, total, cd_size, cd_offset, 0)
    return data[:eocd] + z64 + locator + end


def with_central_zip64_offset(data: bytes, name: str, *, sentinel: bool = True) -> bytes:
    """Move ``name``'s local-header offset into a ZIP64 extra of its central entry (0xFFFFFFFF in the field).

    Without ``sentinel`` the field keeps its value while the extra is added anyway: the extra then
    replaces nothing, and readers differ on whether to use it.
    """
    record = find(data, name)
    n, m = struct.unpack_from("<HH", data, record.central + 28)
    extra = struct.pack("<HHQ", 1, 8, record.local)
    at = record.central + 46 + n + m
    out = bytearray(data[:at] + extra + data[at:])
    struct.pack_into("<H", out, record.central + 30, m + len(extra))
    if sentinel:
        struct.pack_into("<I", out, record.central + 42, 0xFFFFFFFF)
    cd_size = struct.unpack_from("<I", out, len(out) - EOCD_SIZE + 12)[0]
    struct.pack_into("<I", out, len(out) - EOCD_SIZE + 12, cd_size + len(extra))
    return bytes(out)
