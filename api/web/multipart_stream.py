"""Receive a multipart/form-data body as it arrives: files straight to disk, under a byte limit.

The framework's own form parsing spools parts in memory first and applies no total limit to files,
so uploads and /v1/verify read the raw stream here instead. A declared Content-Length over the
limit is refused before a byte is read; a body that grows past it is refused as soon as it does.
Either way the caller gets a 413 ``payload_too_large``. Files land in a fresh folder the caller
removes, under plain numbered names: the sender's name is kept apart (``ReceivedFile.filename``,
for the manifest), so a long or odd name never reaches the file system. A body whose framing is
broken, or that ends before its closing boundary, is a 400: a truncated file is never accepted.
"""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from python_multipart.multipart import MultipartParser, MultipartState, parse_options_header
from starlette.requests import ClientDisconnect, Request

from api.service.errors import ApiError
from api.service.intake import ReceivedFile

log = logging.getLogger(__name__)

#: Multipart framing (boundaries, part headers) allowed on top of the file bytes themselves.
FRAMING_ALLOWANCE = 64 << 10
#: A body over the limit by at most this much is read to its end before the 413, so the client,
#: still sending, reads the answer instead of a reset connection. Bigger ones are cut off.
DRAIN_MAX_BYTES = 16 << 20
MAX_FIELD_BYTES = 8 << 10
MAX_PARTS = 200
#: Characters of a sender's file name kept, as sent (for the manifest); the name on disk is always ours.
MAX_FILENAME_CHARS = 1000
#: RFC 2046 section 5.1.1: a boundary is 1 to 70 characters from this set, not ending in a space.
MAX_BOUNDARY_CHARS = 70
_BOUNDARY = re.compile(rb"[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]")


@dataclass
class ReceivedForm:
    folder: Path
    files: list[ReceivedFile] = field(default_factory=list)
    fields: dict[str, str] = field(default_factory=dict)

    def discard(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def bad_multipart(reason: str) -> ApiError:
    return ApiError(400, "bad_request", f"malformed multipart body: {reason}")


def too_large(limit: int) -> ApiError:
    return ApiError(413, "payload_too_large", f"the request body is over the limit of {limit} bytes")


class _Parts:
    """Parser callbacks: collect headers, route bodies to files or small fields, count bytes."""

    def __init__(self, form: ReceivedForm, file_fields: frozenset[str], limit: int) -> None:
        self.form, self.file_fields, self.limit = form, file_fields, limit
        self.header_name = b""
        self.header_value = b""
        self.headers: dict[bytes, bytes] = {}
        self.sink: BinaryIO | None = None
        self.current: ReceivedFile | None = None
        self.field_name: str | None = None
        self.field_value = bytearray()
        self.file_bytes = 0
        self.parts = 0
        self.open_part = False

    def callbacks(self) -> dict[str, object]:
        return {"on_part_begin": self.part_begin, "on_header_field": self.header_field,
                "on_header_value": self.header_value_data, "on_header_end": self.header_end,
                "on_headers_finished": self.headers_finished, "on_part_data": self.part_data,
                "on_part_end": self.part_end}

    def part_begin(self) -> None:
        self.parts += 1
        self.open_part = True
        if self.parts > MAX_PARTS:
            raise ApiError(422, "invalid_request", f"more than {MAX_PARTS} parts in the form")
        self.headers = {}
        self.current, self.field_name, self.field_value = None, None, bytearray()

    def header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_name += data[start:end]

    def header_value_data(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def header_end(self) -> None:
        self.headers[self.header_name.lower()] = self.header_value
        self.header_name, self.header_value = b"", b""

    def headers_finished(self) -> None:
        disposition, params = parse_options_header(self.headers.get(b"content-disposition", b""))
        if disposition != b"form-data" or b"name" not in params:
            raise bad_multipart("a part has no Content-Disposition: form-data with a name")
        name = params[b"name"].decode("utf-8", "replace")
        filename = params.get(b"filename")
        if name in self.file_fields:
            original = filename.decode("utf-8", "replace") if filename is not None else "file"
            index = len(self.form.files)
            folder = self.form.folder / str(index)
            folder.mkdir()
            # The name on disk is ours; the sender's, as sent, is kept for the manifest only.
            self.current = ReceivedFile(field=name, filename=original[:MAX_FILENAME_CHARS], path=folder / "content")
            self.sink = self.current.path.open("wb")
            self.form.files.append(self.current)
        else:
            self.field_name = name

    def part_data(self, data: bytes, start: int, end: int) -> None:
        size = end - start
        if self.current is not None and self.sink is not None:
            self.file_bytes += size
            if self.file_bytes > self.limit:
                raise too_large(self.limit)
            self.current.size += size
            self.sink.write(data[start:end])
        elif self.field_name is not None:
            if len(self.field_value) + size > MAX_FIELD_BYTES:
                raise ApiError(422, "invalid_request",
                               f"form field {self.field_name!r} is over {MAX_FIELD_BYTES} bytes")
            self.field_value += data[start:end]

    def part_end(self) -> None:
        self.open_part = False
        if self.sink is not None:
            self.sink.close()
            self.sink = None
        elif self.field_name is not None:
            self.form.fields[self.field_name] = self.field_value.decode("utf-8", "replace")

    def close(self) -> None:
        if self.sink is not None:
            self.sink.close()


class _Body:
    """The request body straight from the ASGI channel, remembering whether more is to come."""

    def __init__(self, request: Request) -> None:
        self.receive = request.receive
        self.more = True
        self.received = 0

    async def chunk(self) -> bytes:
        message = await self.receive()
        if message["type"] == "http.disconnect":
            self.more = False
            raise ClientDisconnect()
        self.more = bool(message.get("more_body", False))
        data: bytes = message.get("body", b"")
        self.received += len(data)
        return data

    async def drain(self) -> None:
        """Read and drop the rest (at most DRAIN_MAX_BYTES), so the client reads our answer."""
        dropped = 0
        while self.more and dropped <= DRAIN_MAX_BYTES:
            try:
                dropped += len(await self.chunk())
            except ClientDisconnect:
                return


async def receive_form(request: Request, *, workdir: Path, limit: int,
                       file_fields: frozenset[str] = frozenset({"file"})) -> ReceivedForm:
    """Stream the request's multipart body into a new folder under ``workdir``.

    Raises ApiError: 415 when the body is not multipart/form-data, 413 over ``limit`` file bytes,
    400 for a bad boundary, broken framing or a body cut short, 422 for no file at all. The folder
    is removed on error.
    """
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    if content_type != b"multipart/form-data":
        raise ApiError(415, "unsupported_media_type", "send multipart/form-data with one or more 'file' fields")
    body = _Body(request)
    ceiling = limit + FRAMING_ALLOWANCE
    declared = _declared_length(request)
    if not _BOUNDARY.fullmatch(params.get(b"boundary", b"")):
        if declared is not None and declared <= ceiling + DRAIN_MAX_BYTES:
            await body.drain()
        raise ApiError(400, "bad_request", f"the multipart boundary must be 1 to {MAX_BOUNDARY_CHARS} characters "
                       "of the RFC 2046 set")
    boundary: bytes = params[b"boundary"]
    if declared is not None and declared > ceiling:
        if declared <= ceiling + DRAIN_MAX_BYTES:
            await body.drain()
        raise too_large(limit)
    workdir.mkdir(parents=True, exist_ok=True)
    form = ReceivedForm(folder=Path(tempfile.mkdtemp(prefix="form-", dir=workdir)))
    parts = _Parts(form, file_fields, limit)
    parser = MultipartParser(boundary, parts.callbacks())  # type: ignore[arg-type]
    try:
        while body.more:
            chunk = await body.chunk()
            if body.received > ceiling:
                raise too_large(limit)
            parser.write(chunk)
        parser.finalize()
        if parser.state != MultipartState.END or parts.open_part:
            raise bad_multipart("it ends before its closing boundary (truncated?)")
        if not form.files:
            raise ApiError(422, "invalid_request", "no 'file' field in the form")
    except ApiError as exc:
        parts.close()
        form.discard()
        if exc.status in (400, 413) and body.received <= ceiling + DRAIN_MAX_BYTES:
            await body.drain()
        raise
    except ClientDisconnect:
        parts.close()
        form.discard()
        raise ApiError(400, "bad_request", "the client went away before the body was complete") from None
    except OSError:
        # Storage trouble (disk full, permissions): the details, paths included, stay in the log.
        parts.close()
        form.discard()
        log.exception("could not store a request body")
        raise ApiError(507, "insufficient_storage", "the server could not store the request body") from None
    except Exception as exc:  # the parser's own errors: malformed framing (their text holds no paths)
        parts.close()
        form.discard()
        raise bad_multipart(str(exc)) from None
    return form


def _declared_length(request: Request) -> int | None:
    value = request.headers.get("content-length")
    if value is None or not value.isdigit():
        return None
    return int(value)
