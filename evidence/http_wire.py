"""HTTP/1.1 message framing on asyncio streams, keeping every byte (RFC 9112 §6).

The recorder relays messages between the browser and the origin without re-encoding them: it needs
to know only where a message ends. These helpers read a header block or a body and hand each raw
piece to a callback, so the same bytes go to the other side and into the record.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from verifier.http_body import HttpFormatError

MAX_HEAD_BYTES = 64 << 10
MAX_CHUNK_LINE_BYTES = 4 << 10
READ_BYTES = 64 << 10
Sink = Callable[[bytes], Awaitable[None]]
_CHUNK_SIZE = re.compile(rb"^([0-9A-Fa-f]{1,16})[ \t]*(?:;.*)?\r?\n$")


class FramingError(HttpFormatError):
    """A message whose framing cannot be followed (too large a head, bad chunk sizes, ...)."""


@dataclass(frozen=True)
class Head:
    """A request or status line with its header fields, and the exact bytes they came as."""

    raw: bytes
    start_line: str
    headers: tuple[tuple[bytes, bytes, bytes], ...]  # (name, value, the raw line including CRLF)

    def get(self, name: str) -> str | None:
        wanted = name.lower().encode()
        values = [v for n, v, _ in self.headers if n.lower() == wanted]
        return b", ".join(values).decode("latin-1") if values else None

    def tokens(self, name: str) -> tuple[str, ...]:
        return tuple(t.strip().lower() for t in (self.get(name) or "").split(",") if t.strip())

    def parts(self) -> list[str]:
        return self.start_line.split(" ", 2)


async def read_head(reader: asyncio.StreamReader) -> Head | None:
    """Read a header block up to and including its blank line. None at a clean end of stream."""
    try:
        raw = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial.strip():
            return None
        raise FramingError("connection closed inside a header block") from exc
    except asyncio.LimitOverrunError as exc:
        raise FramingError(f"header block over {MAX_HEAD_BYTES} bytes") from exc
    lines = raw.split(b"\r\n")
    headers: list[tuple[bytes, bytes, bytes]] = []
    for line in lines[1:-2]:
        name, colon, value = line.partition(b":")
        if not colon or not name.strip():
            raise FramingError(f"malformed header line {line[:60]!r}")
        headers.append((name.strip(), value.strip(), line + b"\r\n"))
    return Head(raw=raw, start_line=lines[0].decode("latin-1"), headers=tuple(headers))


async def _copy_exact(reader: asyncio.StreamReader, size: int, sink: Sink) -> None:
    while size:
        piece = await reader.read(min(size, READ_BYTES))
        if not piece:
            raise FramingError("connection closed inside a body")
        size -= len(piece)
        await sink(piece)


async def _copy_chunked(reader: asyncio.StreamReader, sink: Sink) -> None:
    while True:
        line = await reader.readline()
        if len(line) > MAX_CHUNK_LINE_BYTES:
            raise FramingError("chunk-size line too long")
        match = _CHUNK_SIZE.match(line)
        if match is None:
            raise FramingError(f"malformed chunk-size line {line[:40]!r}")
        await sink(line)
        size = int(match.group(1), 16)
        if size == 0:
            break
        await _copy_exact(reader, size, sink)
        end = await reader.readline()
        if end not in (b"\r\n", b"\n"):
            raise FramingError("chunk data not followed by CRLF")
        await sink(end)
    while True:  # trailer section, ended by an empty line
        line = await reader.readline()
        if not line:
            raise FramingError("connection closed inside the chunked trailer")
        await sink(line)
        if line in (b"\r\n", b"\n"):
            return


async def _copy_to_end(reader: asyncio.StreamReader, sink: Sink) -> None:
    while piece := await reader.read(READ_BYTES):
        await sink(piece)


def _content_length(head: Head) -> int | None:
    value = head.get("content-length")
    if value is None:
        return None
    values = {v.strip() for v in value.split(",")}
    if len(values) != 1 or not next(iter(values)).isdigit():
        raise FramingError(f"invalid Content-Length {value!r}")
    return int(next(iter(values)))


async def copy_request_body(reader: asyncio.StreamReader, head: Head, sink: Sink) -> None:
    """Copy a request body (chunked or Content-Length; none otherwise)."""
    if head.tokens("transfer-encoding")[-1:] == ("chunked",):
        await _copy_chunked(reader, sink)
    elif (length := _content_length(head)) is not None:
        await _copy_exact(reader, length, sink)


def response_has_body(method: str, status: int) -> bool:
    return not (method == "HEAD" or 100 <= status < 200 or status in (204, 304))


async def copy_response_body(reader: asyncio.StreamReader, head: Head, method: str, status: int,
                             sink: Sink) -> bool:
    """Copy a response body as framed by RFC 9112 §6.3. Returns True when the body ran to the end
    of the connection (so neither side may reuse its connection)."""
    if not response_has_body(method, status):
        return False
    transfer = head.tokens("transfer-encoding")
    if transfer:
        if transfer[-1] == "chunked":
            await _copy_chunked(reader, sink)
            return False
        await _copy_to_end(reader, sink)
        return True
    length = _content_length(head)
    if length is not None:
        await _copy_exact(reader, length, sink)
        return False
    await _copy_to_end(reader, sink)
    return True


def status_of(head: Head) -> int:
    parts = head.parts()
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
        raise FramingError(f"not an HTTP/1.x status line: {head.start_line[:60]!r}")
    return int(parts[1])


def keeps_alive(head: Head) -> bool:
    """Whether a message's connection may carry another message after it."""
    connection = head.tokens("connection")
    if "close" in connection:
        return False
    return head.parts()[0] == "HTTP/1.1" or "keep-alive" in connection or head.parts()[-1] == "HTTP/1.1"
