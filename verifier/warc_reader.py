"""Read WARC/1.0 and WARC/1.1 files with the standard library only, streaming.

The verifier must stay small (DESIGN.md §2), so it does not use warcio: a WARC is a sequence of
records, each a block of ``Name: value`` header lines, a blank line, ``Content-Length`` bytes of
block and two CRLFs, usually each in its own gzip member. This module reads that and nothing more:
it does not check digests (``warcio check`` does) and does not interpret HTTP inside the block
(``verifier.http_body`` does).

Blocks are skipped in constant memory unless the caller asks for them, and an asked-for block is
refused past ``MAX_BLOCK_BYTES``. Anything malformed raises ``WarcFormatError``.
"""

from __future__ import annotations

import gzip
import typing
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import IO

from verifier.errors import VerificationError

MAX_WARC_HEADER_BYTES = 64 << 10
MAX_WARC_HEADER_LINES = 200
MAX_WARC_RECORDS = 200_000
MAX_BLOCK_BYTES = 256 << 20
SKIP_CHUNK_BYTES = 1 << 20


class WarcFormatError(VerificationError):
    """The WARC file is not well-formed."""


@dataclass(frozen=True)
class WarcRecord:
    """One record: its WARC headers (names lower-cased) and, if asked for, its block."""

    headers: Mapping[str, str]
    block: bytes | None

    @property
    def type(self) -> str:
        return self.headers.get("warc-type", "")

    @property
    def target_uri(self) -> str:
        return self.headers.get("warc-target-uri", "")

    @property
    def record_id(self) -> str:
        return self.headers.get("warc-record-id", "")

    @property
    def ip_address(self) -> str:
        return self.headers.get("warc-ip-address", "")


def _never(_headers: Mapping[str, str]) -> bool:
    return False


def _read_headers(stream: IO[bytes], number: int) -> dict[str, str] | None:
    first = stream.readline(MAX_WARC_HEADER_BYTES)
    while first in (b"\r\n", b"\n"):
        first = stream.readline(MAX_WARC_HEADER_BYTES)
    if not first:
        return None
    if not first.startswith(b"WARC/"):
        raise WarcFormatError(f"record {number} does not start with a WARC version line: {first[:40]!r}")
    headers: dict[str, str] = {"": first.strip().decode("ascii", "replace")}
    total = len(first)
    for _ in range(MAX_WARC_HEADER_LINES):
        line = stream.readline(MAX_WARC_HEADER_BYTES)
        total += len(line)
        if total > MAX_WARC_HEADER_BYTES:
            raise WarcFormatError(f"record {number}: WARC header block over {MAX_WARC_HEADER_BYTES} bytes")
        if line in (b"\r\n", b"\n"):
            return headers
        if not line:
            raise WarcFormatError(f"record {number}: file ends inside the WARC headers")
        name, colon, value = line.decode("utf-8", "replace").partition(":")
        if not colon:
            raise WarcFormatError(f"record {number}: malformed WARC header line {line[:60]!r}")
        headers[name.strip().lower()] = value.strip()
    raise WarcFormatError(f"record {number}: more than {MAX_WARC_HEADER_LINES} WARC header lines")


def _read_block(stream: IO[bytes], length: int, keep: bool, number: int) -> bytes | None:
    if keep and length > MAX_BLOCK_BYTES:
        raise WarcFormatError(f"record {number}: block of {length} bytes is over the limit of {MAX_BLOCK_BYTES}")
    parts: list[bytes] = []
    remaining = length
    while remaining:
        chunk = stream.read(min(remaining, SKIP_CHUNK_BYTES))
        if not chunk:
            raise WarcFormatError(f"record {number}: file ends inside a block")
        remaining -= len(chunk)
        if keep:
            parts.append(chunk)
    return b"".join(parts) if keep else None


def iter_warc(stream: IO[bytes], *, want_block: Callable[[Mapping[str, str]], bool] = _never,
              compressed: bool = True) -> Iterator[WarcRecord]:
    """Yield the records of a WARC stream; a record's block is read only when ``want_block(headers)``.

    ``compressed`` means gzip (one member per record or one for the whole file; both read the same).
    Raises WarcFormatError for malformed input.
    """
    source = typing.cast(IO[bytes], gzip.GzipFile(fileobj=stream, mode="rb")) if compressed else stream
    try:
        for number in range(MAX_WARC_RECORDS + 1):
            headers = _read_headers(source, number)
            if headers is None:
                return
            if number == MAX_WARC_RECORDS:
                raise WarcFormatError(f"more than {MAX_WARC_RECORDS} records")
            try:
                length = int(headers.get("content-length", ""))
            except ValueError as exc:
                raise WarcFormatError(f"record {number} has no valid Content-Length") from exc
            if length < 0:
                raise WarcFormatError(f"record {number} has a negative Content-Length")
            block = _read_block(source, length, want_block(headers), number)
            if source.read(4) not in (b"\r\n\r\n",):
                raise WarcFormatError(f"record {number} is not followed by CRLF CRLF")
            yield WarcRecord(headers=headers, block=block)
    except (OSError, EOFError, zlib.error) as exc:
        raise WarcFormatError(f"WARC stream is damaged: {exc}") from exc
