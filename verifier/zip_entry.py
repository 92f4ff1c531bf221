"""Read one entry's bytes from where the layout walk found them, and nowhere else.

The stream inflates (or copies) exactly ``compressed_size`` bytes from ``data_offset`` and must give
exactly ``size`` bytes whose CRC-32 is ``crc``, the values the central directory and the local header
both state. More, fewer or different bytes raise ``InvalidPackage``: the reader cannot be made to
see bytes the layout walk did not account for.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Iterator
from typing import BinaryIO

from verifier.errors import InvalidPackage
from verifier.zip_layout import DEFLATED, ZipEntry

#: How much compressed input is read, and how much output produced, per step.
CHUNK_BYTES = 1 << 20
#: The line buffer for readers that need readline (WARC). A 1 MiB one costs ~1 ms per open, measured.
BUFFER_BYTES = 64 << 10


def _raw_chunks(f: BinaryIO, entry: ZipEntry) -> Iterator[bytes]:
    f.seek(entry.data_offset)
    remaining = entry.compressed_size
    while remaining:
        chunk = f.read(min(remaining, CHUNK_BYTES))
        if not chunk:
            raise InvalidPackage(f"entry {entry.name!r} is truncated")
        remaining -= len(chunk)
        yield chunk


def _inflated(f: BinaryIO, entry: ZipEntry) -> Iterator[bytes]:
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    produced = 0
    try:
        for chunk in _raw_chunks(f, entry):
            data = chunk
            while True:
                # max_length keeps a bomb's output bounded per step; the rest waits in unconsumed_tail,
                # and a full output block means zlib may hold more even when no input is left.
                out = inflater.decompress(data, CHUNK_BYTES)
                data = inflater.unconsumed_tail
                produced += len(out)
                if produced > entry.size:
                    raise InvalidPackage(f"entry {entry.name!r} inflates past its declared {entry.size} bytes")
                if out:
                    yield out
                if not data and len(out) < CHUNK_BYTES:
                    break
        if not inflater.eof or inflater.unused_data or inflater.unconsumed_tail:
            raise InvalidPackage(f"entry {entry.name!r}: its deflate stream does not end where its data ends")
    except zlib.error as exc:
        raise InvalidPackage(f"entry {entry.name!r}: damaged deflate data ({exc})") from exc


def _checked(f: BinaryIO, entry: ZipEntry) -> Iterator[bytes]:
    source = _inflated(f, entry) if entry.method == DEFLATED else _raw_chunks(f, entry)
    crc = 0
    size = 0
    for chunk in source:
        crc = zlib.crc32(chunk, crc)
        size += len(chunk)
        yield chunk
    if size != entry.size:
        raise InvalidPackage(f"entry {entry.name!r} holds {size} bytes, its headers say {entry.size}")
    if crc != entry.crc:
        raise InvalidPackage(f"entry {entry.name!r} fails its CRC-32 check (damaged data)")


class EntryStream(io.RawIOBase):
    """A raw stream over one entry's verified bytes; wrap it in ``io.BufferedReader`` for readline."""

    def __init__(self, f: BinaryIO, entry: ZipEntry) -> None:
        super().__init__()
        self._chunks = _checked(f, entry)
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._pending = memoryview(chunk)
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


def open_entry(f: BinaryIO, entry: ZipEntry) -> io.BufferedReader:
    """Return a buffered stream of ``entry``'s bytes from the open zip file ``f``."""
    return io.BufferedReader(EntryStream(f, entry), BUFFER_BYTES)
