"""Undoing transfer and content codings of recorded responses: exact, bounded, strict."""

from __future__ import annotations

import gzip
import zlib

import pytest

from verifier.http_body import HttpFormatError, dechunk, decode_body, parse_response

PAGE = "<html><body>证据 evidence</body></html>".encode() * 20


def _chunked(data: bytes, size: int = 7) -> bytes:
    pieces = [b"%x\r\n%s\r\n" % (len(data[i:i + size]), data[i:i + size]) for i in range(0, len(data), size)]
    return b"".join(pieces) + b"0\r\n\r\n"


def _response(headers: str, body: bytes) -> bytes:
    return f"HTTP/1.1 200 OK\r\n{headers}\r\n".encode() + body


def test_chunked_gzip_is_undone_in_order() -> None:
    message = _response("Content-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n", _chunked(gzip.compress(PAGE)))
    body = decode_body(parse_response(message))
    assert body.data == PAGE
    assert (body.transfer_coding, body.decoded, body.undecoded) == ("chunked", ("gzip",), ())


def test_content_length_ignores_trailing_bytes_and_multi_member_gzip() -> None:
    payload = gzip.compress(PAGE[:100]) + gzip.compress(PAGE[100:])
    message = _response(f"Content-Encoding: x-gzip\r\nContent-Length: {len(payload)}\r\n", payload + b"junk")
    assert decode_body(parse_response(message)).data == PAGE


@pytest.mark.parametrize("wbits", [zlib.MAX_WBITS, -zlib.MAX_WBITS])
def test_deflate_with_and_without_zlib_wrapper(wbits: int) -> None:
    engine = zlib.compressobj(wbits=wbits)
    payload = engine.compress(PAGE) + engine.flush()
    message = _response(f"Content-Encoding: deflate\r\nContent-Length: {len(payload)}\r\n", payload)
    assert decode_body(parse_response(message)).data == PAGE


def test_unknown_coding_is_left_in_place_and_named() -> None:
    payload = b"\x0b\x02\x80brotli-bytes"
    message = _response(f"Content-Encoding: gzip, br\r\nContent-Length: {len(payload)}\r\n", payload)
    body = decode_body(parse_response(message))
    assert body.data == payload and body.decoded == () and body.undecoded == ("gzip", "br")


def test_interim_responses_are_skipped_and_headers_kept_verbatim() -> None:
    message = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 404 Not Found\r\nX-Odd:   a  b \r\n folded\r\n\r\nbody"
    response = parse_response(message)
    assert response.status == 404 and response.reason == "Not Found"
    assert response.header("x-odd") == "a  b folded"
    assert decode_body(response).transfer_coding == "close-delimited"


def test_gzip_bomb_is_refused() -> None:
    bomb = gzip.compress(b"\0" * (8 << 20))
    message = _response(f"Content-Encoding: gzip\r\nContent-Length: {len(bomb)}\r\n", bomb)
    with pytest.raises(HttpFormatError, match="exceeds"):
        decode_body(parse_response(message), limit=1 << 20)


@pytest.mark.parametrize(("message", "error"), [
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "malformed chunk-size"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nshort\r\n", "truncated"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", "shorter than its Content-Length"),
    (b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 4\r\n\r\nnope", "cannot be decoded"),
    (b"SMTP ready\r\n\r\n", "not an HTTP status line"),
    (b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", "malformed header line"),
    (b"HTTP/1.1 200 OK\r\n", "no end of the HTTP header block"),
])
def test_malformed_messages_raise(message: bytes, error: str) -> None:
    with pytest.raises(HttpFormatError, match=error):
        decode_body(parse_response(message))


def test_dechunk_limit() -> None:
    with pytest.raises(HttpFormatError, match="exceeds"):
        dechunk(_chunked(b"x" * 100), limit=50)
