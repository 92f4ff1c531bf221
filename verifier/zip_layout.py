"""The one reading of a zip file: its layout walked byte by byte, strictly.

Zip readers disagree wherever the format leaves room: a central directory that points past bytes
nobody explains, a local header that names another file or size than its central entry, a comment
that hides a second archive, prepended data that one reader skips and another reads. A court must
see the same files whatever reader counsel uses, so this module accepts only a zip with exactly one
reading and raises ``InvalidPackage`` naming the first thing that could be read two ways:

- exactly one end-of-central-directory record (EOCD), the last 22 bytes of the file: no comment, no
  bytes after it; a ZIP64 EOCD and locator only right before it and only when they agree with it;
- the central directory ends where the end records begin, and its entries tile it exactly;
- walking local headers from offset 0 reaches every entry in central-directory order, each local
  header, its data and its data descriptor tile the file exactly up to the central directory: no
  prefix, no gap, no overlap, nothing hidden;
- each local header agrees with its central entry on name, flags, method, time, CRC and both sizes,
  compared as resolved values (after ZIP64 extras), and so does a data descriptor.

Only this module knows zip structures. It checks structure, not policy: names, limits and what a
package must hold are judged by ``verifier.package`` on the entries returned here.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import BinaryIO

from verifier.errors import InvalidPackage

#: A central directory of MAX_FILES entries with short names stays far below this.
MAX_CENTRAL_DIRECTORY_BYTES = 16 << 20
#: The EOCD may be followed by a comment of up to 65535 bytes; this is where to look for it.
EOCD_SEARCH_BYTES = 22 + 0xFFFF
STORED, DEFLATED = 0, 8
FLAG_ENCRYPTED = 0x0001
FLAG_DATA_DESCRIPTOR = 0x0008
FLAG_UTF8 = 0x0800
#: Deflate option bits (1, 2), data descriptor (3) and UTF-8 names (11); every other flag is refused.
ALLOWED_FLAGS = 0x0002 | 0x0004 | FLAG_DATA_DESCRIPTOR | FLAG_UTF8
ZIP64_EXTRA = 0x0001
#: Info-ZIP Unicode path and comment extras: readers that honour them show another name than the header's.
UNICODE_EXTRAS = frozenset({0x7075, 0x6375})
SENTINEL_16 = 0xFFFF
SENTINEL_32 = 0xFFFFFFFF

_EOCD = struct.Struct("<4sHHHHIIH")
_ZIP64_LOCATOR = struct.Struct("<4sIQI")
_ZIP64_EOCD = struct.Struct("<4sQHHIIQQQQ")
_CENTRAL = struct.Struct("<4sHHHHHHIIIHHHHHII")
_LOCAL = struct.Struct("<4sHHHHHIIIHH")
EOCD_SIG = b"PK\x05\x06"
ZIP64_LOCATOR_SIG = b"PK\x06\x07"
ZIP64_EOCD_SIG = b"PK\x06\x06"
CENTRAL_SIG = b"PK\x01\x02"
LOCAL_SIG = b"PK\x03\x04"
DESCRIPTOR_SIG = b"PK\x07\x08"
#: The ZIP64 EOCD without extensible data: 56 bytes, of which 44 follow its size field.
ZIP64_EOCD_RECORD_SIZE = 44


@dataclass(frozen=True)
class ZipEntry:
    """One entry as the central directory and its local header both state it."""

    name: str
    flags: int
    method: int
    crc: int
    compressed_size: int
    size: int
    header_offset: int
    data_offset: int
    external_attr: int

    @property
    def is_dir(self) -> bool:
        return self.name.endswith("/")


@dataclass(frozen=True)
class ZipLayout:
    """A zip whose every byte is explained: entries in file order, then the central directory."""

    file_size: int
    central_directory_offset: int
    entries: tuple[ZipEntry, ...]


@dataclass(frozen=True)
class _Central:
    raw_name: bytes
    name: str
    flags: int
    method: int
    time: int
    date: int
    crc: int
    compressed_size: int
    size: int
    header_offset: int
    external_attr: int


def _read_at(f: BinaryIO, offset: int, length: int) -> bytes:
    f.seek(offset)
    data = f.read(length)
    if len(data) != length:
        raise InvalidPackage("zip file is truncated")
    return data


def _extras(data: bytes, where: str) -> dict[int, bytes]:
    """Split an extra field into ``{header id: payload}``. The records must tile it exactly, once each."""
    fields: dict[int, bytes] = {}
    pos = 0
    while pos < len(data):
        if pos + 4 > len(data):
            raise InvalidPackage(f"{where}: malformed extra field")
        ident, length = struct.unpack_from("<HH", data, pos)
        if pos + 4 + length > len(data):
            raise InvalidPackage(f"{where}: malformed extra field")
        if ident in fields:
            raise InvalidPackage(f"{where}: extra field {ident:#06x} appears twice")
        if ident in UNICODE_EXTRAS:
            raise InvalidPackage(f"{where}: carries an Info-ZIP Unicode name or comment, which readers apply "
                                 "differently")
        fields[ident] = data[pos + 4:pos + 4 + length]
        pos += 4 + length
    return fields


def _find_eocd(f: BinaryIO, size: int) -> int:
    """Return the offset of the EOCD, which must be the file's last 22 bytes."""
    if size < _EOCD.size:
        raise InvalidPackage("not a zip file (too short)")
    window = min(size, EOCD_SEARCH_BYTES)
    tail = _read_at(f, size - window, window)
    if tail[-_EOCD.size:-_EOCD.size + 4] == EOCD_SIG and tail[-2:] == b"\x00\x00":
        return size - _EOCD.size
    found = tail.rfind(EOCD_SIG, 0, len(tail) - _EOCD.size + 4)
    if found < 0 or found + _EOCD.size > len(tail):
        raise InvalidPackage("not a zip file (no end of central directory record)")
    comment = struct.unpack_from("<H", tail, found + 20)[0]
    if comment and found + _EOCD.size + comment == len(tail):
        raise InvalidPackage(f"the zip comment is not empty ({comment} bytes); a package carries none")
    after = len(tail) - found - _EOCD.size
    raise InvalidPackage(f"{after} bytes follow the end of central directory record (appended data)")


def _central_bounds(f: BinaryIO, eocd: int) -> tuple[int, int, int, int]:
    """Return ``(count, cd_offset, cd_size, cd_end)`` from the EOCD and, when present, the ZIP64 records."""
    (_, disk, cd_disk, on_disk, total, cd_size, cd_offset, _) = _EOCD.unpack(_read_at(f, eocd, _EOCD.size))
    locator_at = eocd - _ZIP64_LOCATOR.size
    has_locator = locator_at >= 0 and _read_at(f, locator_at, 4) == ZIP64_LOCATOR_SIG
    if not has_locator:
        if SENTINEL_16 in (disk, cd_disk, on_disk, total) or SENTINEL_32 in (cd_size, cd_offset):
            raise InvalidPackage("the end of central directory record needs a ZIP64 record that is missing")
        if disk or cd_disk or on_disk != total:
            raise InvalidPackage("multi-disk (split) zip archives are not supported")
        return total, cd_offset, cd_size, eocd
    _, z_disk, z_offset, disks = _ZIP64_LOCATOR.unpack(_read_at(f, locator_at, _ZIP64_LOCATOR.size))
    if z_disk != 0 or disks != 1:
        raise InvalidPackage("multi-disk (split) zip archives are not supported")
    if z_offset + _ZIP64_EOCD.size != locator_at:
        raise InvalidPackage("the ZIP64 end record is not right before its locator")
    (sig, record, _, _, z64_disk, z64_cd_disk, z_on_disk, z_total, z_size, z_cd) = _ZIP64_EOCD.unpack(
        _read_at(f, z_offset, _ZIP64_EOCD.size))
    if sig != ZIP64_EOCD_SIG or record != ZIP64_EOCD_RECORD_SIZE:
        raise InvalidPackage("malformed ZIP64 end of central directory record")
    if z64_disk or z64_cd_disk or z_on_disk != z_total:
        raise InvalidPackage("multi-disk (split) zip archives are not supported")
    for small, large, sentinel in ((on_disk, z_on_disk, SENTINEL_16), (total, z_total, SENTINEL_16),
                                   (cd_size, z_size, SENTINEL_32), (cd_offset, z_cd, SENTINEL_32)):
        if small not in (sentinel, large):
            raise InvalidPackage("the end of central directory record and its ZIP64 record disagree")
    return z_total, z_cd, z_size, z_offset


def _resolve_zip64(fields: dict[int, bytes], values: list[int], sentinels: list[int], where: str) -> list[int]:
    """Replace each sentinel value by the next 8 bytes of the ZIP64 extra, which must hold exactly those."""
    wanted = [i for i, (value, sentinel) in enumerate(zip(values, sentinels, strict=True)) if value == sentinel]
    payload = fields.get(ZIP64_EXTRA)
    if payload is None:
        if wanted:
            raise InvalidPackage(f"{where}: a size or offset needs a ZIP64 extra field that is missing")
        return values
    if len(payload) != 8 * len(wanted):
        raise InvalidPackage(f"{where}: the ZIP64 extra field does not match the fields it replaces")
    resolved = list(values)
    for slot, index in enumerate(wanted):
        resolved[index] = struct.unpack_from("<Q", payload, 8 * slot)[0]
    return resolved


def _central_entries(data: bytes, count: int) -> list[_Central]:
    entries: list[_Central] = []
    pos = 0
    for number in range(count):
        if pos + _CENTRAL.size > len(data) or data[pos:pos + 4] != CENTRAL_SIG:
            raise InvalidPackage(f"central directory entry {number + 1} of {count} is malformed")
        (_, _, _, flags, method, time, date, crc, csize, size, name_len, extra_len, comment_len, disk, _,
         external, offset) = _CENTRAL.unpack_from(data, pos)
        end = pos + _CENTRAL.size + name_len + extra_len + comment_len
        if end > len(data):
            raise InvalidPackage(f"central directory entry {number + 1} of {count} overruns the directory")
        raw_name = data[pos + _CENTRAL.size:pos + _CENTRAL.size + name_len]
        where = f"entry {_shown(raw_name)}"
        name = _decode_name(raw_name, flags)
        if comment_len:
            raise InvalidPackage(f"{where} has a comment; a package carries none")
        if disk not in (0,):
            raise InvalidPackage(f"{where}: multi-disk (split) zip archives are not supported")
        fields = _extras(data[pos + _CENTRAL.size + name_len:end - comment_len], where)
        size, csize, offset = _resolve_zip64(fields, [size, csize, offset], [SENTINEL_32] * 3, where)
        _check_encoding(where, flags, method, csize, size)
        entries.append(_Central(raw_name, name, flags, method, time, date, crc, csize, size, offset, external))
        pos = end
    if pos != len(data):
        raise InvalidPackage(f"the central directory holds {len(data) - pos} bytes after its {count} entries")
    return entries


def _check_encoding(where: str, flags: int, method: int, csize: int, size: int) -> None:
    if flags & FLAG_ENCRYPTED:
        raise InvalidPackage(f"{where} is encrypted")
    if flags & ~ALLOWED_FLAGS:
        raise InvalidPackage(f"{where} uses zip flags {flags:#06x}, which this verifier does not read")
    if method not in (STORED, DEFLATED):
        raise InvalidPackage(f"{where} uses an unsupported compression method ({method})")
    if method == STORED and csize != size:
        raise InvalidPackage(f"{where} is stored but its compressed size differs from its size")
    if method == STORED and flags & FLAG_DATA_DESCRIPTOR:
        # A streaming reader cannot find where stored data with a deferred size ends.
        raise InvalidPackage(f"{where} is stored with a data descriptor, which streaming readers cannot delimit")


def _decode_name(raw: bytes, flags: int) -> str:
    """One name for every reader: UTF-8 when flagged so, else plain ASCII (CP437 and UTF-8 agree only there)."""
    if not raw:
        raise InvalidPackage("an entry has an empty name")
    if flags & FLAG_UTF8:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidPackage(f"entry name {_shown(raw)} is not valid UTF-8") from exc
    if not raw.isascii():
        raise InvalidPackage(f"entry name {_shown(raw)} is not marked UTF-8")
    return raw.decode("ascii")


def _shown(raw_name: bytes) -> str:
    return repr(raw_name.decode("utf-8", "backslashreplace")[:80])


def _local_entry(f: BinaryIO, central: _Central, limit: int, next_offset: int) -> ZipEntry:
    """Parse the local header at ``central.header_offset``; return the entry and check it ends at ``next_offset``."""
    where = f"entry {_shown(central.raw_name)}"
    pos = central.header_offset
    if pos + _LOCAL.size > limit:
        raise InvalidPackage(f"{where}: local header lies outside the entry area")
    (sig, _, flags, method, time, date, crc, csize, size, name_len, extra_len) = _LOCAL.unpack(
        _read_at(f, pos, _LOCAL.size))
    if sig != LOCAL_SIG:
        raise InvalidPackage(f"{where}: no local header where the central directory points")
    data_offset = pos + _LOCAL.size + name_len + extra_len
    if data_offset > limit:
        raise InvalidPackage(f"{where}: local header overruns the entry area")
    tail = _read_at(f, pos + _LOCAL.size, name_len + extra_len)
    if tail[:name_len] != central.raw_name:
        raise InvalidPackage(f"{where}: the local header names {_shown(tail[:name_len])}")
    for what, local, central_value in (("flags", flags, central.flags), ("compression method", method, central.method),
                                       ("modification time", (date, time), (central.date, central.time))):
        if local != central_value:
            raise InvalidPackage(f"{where}: local header and central directory disagree on its {what}")
    fields = _extras(tail[name_len:], f"{where} (local header)")
    zip64 = fields.get(ZIP64_EXTRA)
    if zip64 is not None:
        if len(zip64) != 16:
            raise InvalidPackage(f"{where}: the local ZIP64 extra field must hold both sizes")
        size64, csize64 = struct.unpack("<QQ", zip64)
        size = size64 if size == SENTINEL_32 else size
        csize = csize64 if csize == SENTINEL_32 else csize
        stated = [(crc, csize, size), (crc, csize64, size64)]
    else:
        stated = [(crc, csize, size)]
    declared = (central.crc, central.compressed_size, central.size)
    deferred = bool(flags & FLAG_DATA_DESCRIPTOR)
    for values in stated:
        if values != declared and not (deferred and values == (0, 0, 0)):
            names = ("CRC", "compressed size", "size")
            what = next(n for n, a, b in zip(names, values, declared, strict=True) if a != b)
            raise InvalidPackage(f"{where}: local header and central directory disagree on its {what}")
    data_end = data_offset + central.compressed_size
    if data_end > limit:
        raise InvalidPackage(f"{where}: its data overruns the entry area")
    if deferred:
        _check_descriptor(f, where, data_end, next_offset - data_end, zip64 is not None, declared)
    elif data_end != next_offset:
        _gap(where, data_end, next_offset)
    return ZipEntry(name=central.name, flags=flags, method=method, crc=central.crc,
                    compressed_size=central.compressed_size, size=central.size, header_offset=pos,
                    data_offset=data_offset, external_attr=central.external_attr)


def _check_descriptor(f: BinaryIO, where: str, at: int, length: int, zip64: bool,
                      declared: tuple[int, int, int]) -> None:
    """The data descriptor must fill the room up to the next header and state the central values."""
    forms = {24: "<4sIQQ", 20: "<IQQ"} if zip64 else {16: "<4sIII", 12: "<III"}
    form = forms.get(length)
    if form is None:
        raise InvalidPackage(f"{where}: its data descriptor is malformed or followed by unexplained bytes")
    values = struct.unpack(form, _read_at(f, at, length))
    if form.startswith("<4s"):
        if values[0] != DESCRIPTOR_SIG:
            raise InvalidPackage(f"{where}: its data descriptor is malformed")
        values = values[1:]
    if tuple(values) != declared:
        raise InvalidPackage(f"{where}: its data descriptor disagrees with the central directory")


def _gap(where: str, end: int, next_offset: int) -> None:
    if next_offset > end:
        raise InvalidPackage(f"{next_offset - end} unexplained bytes follow {where} (hidden data or a gap)")
    raise InvalidPackage(f"{where} overlaps the next entry or the central directory")


def read_layout(f: BinaryIO, size: int, *, max_entries: int) -> ZipLayout:
    """Walk the zip in ``f`` (``size`` bytes) and return its one reading. Raises InvalidPackage.

    Only the EOCD, the central directory and the local headers are read; no entry data is touched,
    so a caller can judge the declared sizes before anything is decompressed.
    """
    eocd = _find_eocd(f, size)
    count, cd_offset, cd_size, cd_end = _central_bounds(f, eocd)
    if cd_offset + cd_size != cd_end:
        unexplained = cd_end - cd_offset - cd_size
        if unexplained > 0:
            raise InvalidPackage(f"{unexplained} bytes are unexplained before the end records (prepended data, "
                                 "a concatenated archive or a second end record)")
        raise InvalidPackage("the central directory overlaps the end of central directory record")
    if count > max_entries:
        raise InvalidPackage(f"package has {count} entries, more than {max_entries}")
    if cd_size > MAX_CENTRAL_DIRECTORY_BYTES:
        raise InvalidPackage(f"the central directory is {cd_size} bytes, over {MAX_CENTRAL_DIRECTORY_BYTES}")
    centrals = _central_entries(_read_at(f, cd_offset, cd_size), count)
    entries = []
    position = 0
    for index, central in enumerate(centrals):
        where = f"entry {_shown(central.raw_name)}"
        if central.header_offset != position:
            if index == 0 and central.header_offset > 0:
                raise InvalidPackage(f"{central.header_offset} bytes precede the first local header "
                                     "(prepended data or a concatenated archive)")
            if central.header_offset > position:
                raise InvalidPackage(f"{central.header_offset - position} unexplained bytes precede {where} "
                                     "(hidden data or a gap)")
            raise InvalidPackage(f"{where} overlaps the entry before it")
        following = centrals[index + 1].header_offset if index + 1 < len(centrals) else cd_offset
        entry = _local_entry(f, central, cd_offset, following)
        entries.append(entry)
        position = following
    if not centrals and cd_offset != 0:
        raise InvalidPackage(f"{cd_offset} bytes precede the central directory of an empty archive")
    return ZipLayout(file_size=size, central_directory_offset=cd_offset, entries=tuple(entries))
