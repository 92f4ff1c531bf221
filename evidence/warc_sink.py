"""Write captured HTTP exchanges into ``archive/data.warc.gz`` (WARC/1.1, warcio), byte for byte.

warcio re-serialises the HTTP header block of a record from its parsed headers, which would
normalise spacing, folding and case: not what the server sent. ``_VerbatimHeaders`` makes warcio
write the header block exactly as it was received, so each request and response record holds the
bytes that crossed the wire (after TLS; an authenticated capture's request credentials excepted, see
``evidence.browser_session``), and warcio's block and payload digests are computed over those bytes.
Every record carries ``WARC-IP-Address`` (the origin socket's address).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from warcio.statusandheaders import StatusAndHeaders, StatusAndHeadersParser
from warcio.timeutils import datetime_to_iso_date
from warcio.warcwriter import WARCWriter

from evidence.manifest import tool_record

_HEAD_END = b"\r\n\r\n"


class _VerbatimHeaders(StatusAndHeaders):  # type: ignore[misc]
    """Parsed headers (for warcio's bookkeeping) that serialise to the exact bytes received."""

    def __init__(self, raw_head: bytes, parsed: StatusAndHeaders) -> None:
        super().__init__(parsed.statusline, parsed.headers, parsed.protocol)
        self._raw_head = raw_head

    def compute_headers_buffer(self, header_filter: Any = None) -> None:
        self.headers_buff = self._raw_head


def _split(message: bytes) -> tuple[bytes, bytes]:
    end = message.find(_HEAD_END)
    if end < 0:
        return message, b""
    return message[:end + len(_HEAD_END)], message[end + len(_HEAD_END):]


def _headers(raw_head: bytes) -> _VerbatimHeaders:
    try:
        parser = StatusAndHeadersParser([], verify=False)
        parsed = parser.parse(io.BytesIO(raw_head))
    except Exception:  # odd bytes are still recorded verbatim; this parse is only bookkeeping
        first = raw_head.split(b"\r\n", 1)[0].decode("latin-1")
        parsed = StatusAndHeaders(first, [], "")
    return _VerbatimHeaders(raw_head, parsed)


class WarcSink:
    """An open ``data.warc.gz``: a warcinfo record, then request/response pairs as they complete."""

    def __init__(self, path: Path, description: str,
                 redact_request: Callable[[bytes], bytes] | None = None) -> None:
        self.path = path
        #: An authenticated capture keeps its credentials out of the request records
        #: (``evidence.browser_session.redact_request_head``); the response records stay byte-exact.
        self._redact_request = redact_request
        self._file = path.open("wb")
        self._writer = WARCWriter(self._file, gzip=True, warc_version="1.1")
        self.records = 0
        info = tool_record()
        self._writer.write_record(self._writer.create_warcinfo_record(path.name, {
            "software": f"Tiezheng {info['version']} (tiezheng-recorder, warcio)",
            "format": "WARC File Format 1.1",
            "description": description}))
        self.records += 1

    def write_exchange(self, *, url: str, request: bytes, response: bytes, ip: str, date: datetime) -> tuple[str, str]:
        """Write one request record and one response record; return their WARC-Record-IDs."""
        when = datetime_to_iso_date(date.astimezone(UTC).replace(tzinfo=None), use_micros=True)
        common = {"WARC-Date": when, "WARC-IP-Address": ip}
        request_head, request_body = _split(request)
        if self._redact_request is not None:
            request_head = self._redact_request(request_head)
        request_record = self._writer.create_warc_record(
            url, "request", payload=io.BytesIO(request_body), length=len(request_body),
            http_headers=_headers(request_head), warc_headers_dict=dict(common))
        request_id = request_record.rec_headers.get_header("WARC-Record-ID")
        response_head, response_body = _split(response)
        response_record = self._writer.create_warc_record(
            url, "response", payload=io.BytesIO(response_body), length=len(response_body),
            http_headers=_headers(response_head),
            warc_headers_dict={**common, "WARC-Concurrent-To": request_id})
        self._writer.write_record(request_record)
        self._writer.write_record(response_record)
        self.records += 2
        return request_id, response_record.rec_headers.get_header("WARC-Record-ID")

    def close(self) -> None:
        if not self._file.closed:
            self._file.flush()
            self._file.close()
