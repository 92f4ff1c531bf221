"""HTTP/1.1 responses as the wire carried them, and the codings that can be removed from them.

The capture keeps every response byte-exact in the WARC. To compare ``evidence/source.html`` with
the recorded response, the verifier undoes exactly the transfer coding (chunked) and the content
codings (gzip, deflate) of that response, with the standard library only and with hard output limits:
a recorded body is hostile input, and a gzip bomb is a few kilobytes.

The capture tool builds source.html with these same functions, so both sides remove codings the
same way. A coding the standard library cannot undo (``br``, ``zstd``) is left in place and named.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass

from verifier.errors import VerificationError

MAX_HEAD_BYTES = 256 << 10
MAX_DECODED_BYTES = 256 << 20
MAX_INTERIM_RESPONSES = 10
GZIP_CODINGS = frozenset({"gzip", "x-gzip"})
DECODABLE_CODINGS = GZIP_CODINGS | {"deflate", "identity"}
_STATUS_LINE = re.compile(rb"^(HTTP/\d(?:\.\d)?) (\d{3})(?: (.*))?$")
_CHUNK_SIZE = re.compile(rb"^([0-9A-Fa-f]{1,16})[ \t]*(?:;.*)?$")
_HEAD_END = re.compile(rb"\r?\n\r?\n")


class HttpFormatError(VerificationError):
    """A recorded HTTP message cannot be parsed or decoded."""


@dataclass(frozen=True)
class HttpResponse:
    """One parsed response. ``body`` is the message body as received: transfer coding still applied."""

    version: str
    status: int
    reason: str
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        values = [v for k, v in self.headers if k.lower() == wanted]
        return ", ".join(values) if values else None

    def tokens(self, name: str) -> tuple[str, ...]:
        """The comma-separated, lower-cased tokens of a header (all occurrences, in order)."""
        value = self.header(name) or ""
        return tuple(t.strip().lower() for t in value.split(",") if t.strip())


@dataclass(frozen=True)
class DecodedBody:
    """A body with its codings removed, and which ones were."""

    data: bytes
    transfer_coding: str
    content_codings: tuple[str, ...]
    decoded: tuple[str, ...]
    undecoded: tuple[str, ...]

    def record(self) -> dict[str, object]:
        """The manifest's ``content_encoding`` object."""
        return {"transfer_coding": self.transfer_coding, "content_codings": list(self.content_codings),
                "removed": list(self.decoded), "left_in_place": list(self.undecoded)}


def _parse_head(head: bytes) -> tuple[bytes, list[tuple[str, str]]]:
    lines = re.split(rb"\r?\n", head)
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if not line:
            continue
        if line[:1] in (b" ", b"\t") and headers:
            folded_name, folded_value = headers[-1]
            headers[-1] = (folded_name, f"{folded_value} {line.strip().decode('latin-1')}")
            continue
        raw_name, colon, raw_value = line.partition(b":")
        if not colon or not raw_name or raw_name != raw_name.strip():
            raise HttpFormatError(f"malformed header line {line[:60]!r}")
        headers.append((raw_name.decode("latin-1"), raw_value.strip().decode("latin-1")))
    return lines[0], headers


def _split_head(message: bytes, offset: int) -> tuple[bytes, int]:
    match = _HEAD_END.search(message, offset, offset + MAX_HEAD_BYTES)
    if match is None:
        raise HttpFormatError("no end of the HTTP header block within the limit")
    return message[offset:match.start()], match.end()


def parse_response(message: bytes) -> HttpResponse:
    """Parse a complete HTTP/1.x response as received. Interim 1xx responses before it are skipped.

    Raises HttpFormatError for anything that is not an HTTP/1.x response.
    """
    offset = 0
    for _ in range(MAX_INTERIM_RESPONSES + 1):
        head, body_start = _split_head(message, offset)
        status_line, headers = _parse_head(head)
        match = _STATUS_LINE.match(status_line)
        if match is None:
            raise HttpFormatError(f"not an HTTP status line: {status_line[:60]!r}")
        status = int(match.group(2))
        if 100 <= status < 200 and status != 101:
            offset = body_start
            continue
        return HttpResponse(version=match.group(1).decode(), status=status,
                            reason=(match.group(3) or b"").decode("latin-1"), headers=tuple(headers),
                            body=message[body_start:])
    raise HttpFormatError(f"more than {MAX_INTERIM_RESPONSES} interim responses")


def dechunk(body: bytes, limit: int = MAX_DECODED_BYTES) -> bytes:
    """Remove the chunked transfer coding. Raises HttpFormatError if malformed, truncated or over ``limit``."""
    out = bytearray()
    position = 0
    while True:
        end = body.find(b"\n", position)
        if end < 0:
            raise HttpFormatError("chunked body ends inside a chunk-size line")
        match = _CHUNK_SIZE.match(body[position:end].rstrip(b"\r"))
        if match is None:
            raise HttpFormatError(f"malformed chunk-size line {body[position:end][:40]!r}")
        size = int(match.group(1), 16)
        position = end + 1
        if size == 0:
            return bytes(out)  # trailer fields, if any, are not body
        if len(out) + size > limit:
            raise HttpFormatError(f"dechunked body exceeds {limit} bytes")
        if position + size > len(body):
            raise HttpFormatError("chunked body is truncated")
        out += body[position:position + size]
        position += size
        if body[position:position + 2] == b"\r\n":
            position += 2
        elif body[position:position + 1] == b"\n":
            position += 1
        else:
            raise HttpFormatError("chunk data is not followed by CRLF")


def _inflate(data: bytes, wbits: int, limit: int) -> bytes:
    out = bytearray()
    while data:
        engine = zlib.decompressobj(wbits)
        pending = data
        while pending:
            out += engine.decompress(pending, limit + 1 - len(out))
            if len(out) > limit:
                raise HttpFormatError(f"decoded body exceeds {limit} bytes")
            pending = engine.unconsumed_tail
        out += engine.flush()
        if not engine.eof:
            raise HttpFormatError("compressed body is truncated")
        # gzip allows several members one after another; zlib and raw deflate do not.
        data = engine.unused_data if wbits > zlib.MAX_WBITS else b""
    return bytes(out)


def _decode_one(data: bytes, coding: str, limit: int) -> bytes:
    try:
        if coding in GZIP_CODINGS:
            return _inflate(data, 16 + zlib.MAX_WBITS, limit)
        if coding == "deflate":
            # RFC 9110 says zlib-wrapped; some servers send raw deflate anyway.
            try:
                return _inflate(data, zlib.MAX_WBITS, limit)
            except zlib.error:
                return _inflate(data, -zlib.MAX_WBITS, limit)
    except zlib.error as exc:
        raise HttpFormatError(f"{coding} body cannot be decoded: {exc}") from exc
    return data


def decode_body(response: HttpResponse, *, limit: int = MAX_DECODED_BYTES) -> DecodedBody:
    """Remove the transfer coding, then the content codings the standard library knows, last applied first.

    Raises HttpFormatError when the body is malformed or decodes to more than ``limit`` bytes.
    """
    transfer = response.tokens("transfer-encoding")
    if transfer and transfer[-1] == "chunked":
        body, transfer_coding = dechunk(response.body, limit), "chunked"
    elif response.header("content-length") is not None:
        try:
            length = int(response.header("content-length") or "")
        except ValueError as exc:
            raise HttpFormatError("Content-Length is not a number") from exc
        if length < 0 or length > len(response.body):
            raise HttpFormatError(f"body is shorter than its Content-Length {length}")
        body, transfer_coding = response.body[:length], "identity"
    else:
        body, transfer_coding = response.body, "close-delimited"
    codings = tuple(c for c in response.tokens("content-encoding"))
    decoded: list[str] = []
    remaining = list(codings)
    while remaining and remaining[-1] in DECODABLE_CODINGS:
        coding = remaining.pop()
        body = _decode_one(body, coding, limit)
        decoded.append(coding)
    if len(body) > limit:
        raise HttpFormatError(f"body exceeds {limit} bytes")
    return DecodedBody(data=body, transfer_coding=transfer_coding, content_codings=codings,
                       decoded=tuple(decoded), undecoded=tuple(remaining))
