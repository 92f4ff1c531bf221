"""The verifier's stdlib WARC reader against files written by warcio, and against broken ones."""

from __future__ import annotations

import gzip
import io
from datetime import UTC, datetime
from pathlib import Path

import pytest

from evidence.warc_sink import WarcSink
from verifier.warc_reader import WarcFormatError, iter_warc

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type:  text/plain\r\nContent-Length: 5\r\n\r\nhello"
REQUEST = b"GET /a HTTP/1.1\r\nHost: example.test\r\n\r\n"


@pytest.fixture()
def warc(tmp_path: Path) -> bytes:
    sink = WarcSink(tmp_path / "data.warc.gz", "test")
    ids = sink.write_exchange(url="http://example.test/a", request=REQUEST, response=RESPONSE, ip="192.0.2.1",
                              date=datetime.now(UTC))
    sink.close()
    assert all(i.startswith("<urn:uuid:") for i in ids)
    return (tmp_path / "data.warc.gz").read_bytes()


def test_reads_what_warcio_wrote_byte_exact(warc: bytes) -> None:
    records = list(iter_warc(io.BytesIO(warc), want_block=lambda h: h.get("warc-type") != "warcinfo"))
    assert [r.type for r in records] == ["warcinfo", "request", "response"]
    assert records[0].block is None
    assert records[1].block == REQUEST and records[2].block == RESPONSE
    assert records[2].target_uri == "http://example.test/a" and records[2].ip_address == "192.0.2.1"
    assert records[2].headers["warc-concurrent-to"] == records[1].record_id


def test_uncompressed_files_read_the_same(warc: bytes) -> None:
    plain = gzip.decompress(warc)
    records = list(iter_warc(io.BytesIO(plain), want_block=lambda h: True, compressed=False))
    assert records[2].block == RESPONSE


@pytest.mark.parametrize(("mutate", "error"), [
    (lambda w: gzip.compress(b"HTTP/1.1 200 OK\r\n\r\n"), "does not start with a WARC version line"),
    (lambda w: gzip.compress(gzip.decompress(w).replace(b"Content-Length: ", b"Content-Length: x", 1)),
     "no valid Content-Length"),
    (lambda w: gzip.compress(gzip.decompress(w)[:-40]), "ends inside a block|not followed by CRLF CRLF"),
    (lambda w: w[:len(w) // 2], "damaged"),
    (lambda w: b"\x1f\x8b" + b"\x00" * 40, "damaged"),
])
def test_broken_warcs_raise(warc: bytes, mutate, error: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(WarcFormatError, match=error):
        list(iter_warc(io.BytesIO(mutate(warc)), want_block=lambda h: True))
