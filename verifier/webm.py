"""A small, bounded reader of WebM (Matroska) files: how long the video is and how many frames it holds.

P2 needs the session video's duration to hold it against the call log. Only what that needs is read:
the EBML header's DocType, ``Info`` (TimestampScale, Duration), the video track's pixel size, and the
timestamps of every ``SimpleBlock``/``Block`` (Cluster Timestamp + the block's relative timestamp).
Everything else is skipped by its size. Pure: bytes in, a frozen result out; a malformed or oversized
file raises WebmError naming what is wrong and where.

EBML: an element is an ID (a variable-length integer that keeps its length marker), a size (a
variable-length integer without it; all ones means "unknown", allowed for Segment and Cluster), and
its payload. Master elements hold elements; the reader walks them as one flat stream, which reads
sized and unknown-sized Clusters alike.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from verifier.errors import VerificationError

MAX_WEBM_BYTES = 512 << 20
MAX_ELEMENTS = 4_000_000
MAX_ID_BYTES, MAX_SIZE_BYTES = 4, 8
DEFAULT_TIMESTAMP_SCALE_NS = 1_000_000

EBML_HEADER, DOC_TYPE = 0x1A45DFA3, 0x4282
SEGMENT, INFO, TIMESTAMP_SCALE, DURATION = 0x18538067, 0x1549A966, 0x2AD7B1, 0x4489
TRACKS, TRACK_ENTRY, VIDEO, PIXEL_WIDTH, PIXEL_HEIGHT = 0x1654AE6B, 0xAE, 0xE0, 0xB0, 0xBA
CLUSTER, CLUSTER_TIMESTAMP, SIMPLE_BLOCK, BLOCK_GROUP, BLOCK = 0x1F43B675, 0xE7, 0xA3, 0xA0, 0xA1
#: Masters the reader walks into; every other element is skipped whole.
_WALKED = {SEGMENT, INFO, TRACKS, TRACK_ENTRY, VIDEO, CLUSTER, BLOCK_GROUP}
_UNKNOWN_SIZE_ALLOWED = {SEGMENT, CLUSTER}


class WebmError(VerificationError):
    """Not a WebM file this reader can measure; the message says what is wrong and at which byte."""


@dataclass(frozen=True)
class WebmInfo:
    doc_type: str
    #: Info/Duration in seconds (None when the file does not state one, e.g. a live recording).
    duration_seconds: float | None
    blocks: int
    #: The timestamp of the last frame to be shown, in seconds from the start.
    last_block_seconds: float
    width: int | None
    height: int | None

    @property
    def span_seconds(self) -> float:
        """The duration the file states, else the time of its last frame."""
        return self.duration_seconds if self.duration_seconds is not None else self.last_block_seconds


def _vint(data: bytes, offset: int, max_bytes: int, keep_marker: bool) -> tuple[int, int, bool]:
    """(value, length, all ones) of the variable-length integer at ``offset``. Raises WebmError."""
    if offset >= len(data):
        raise WebmError(f"truncated at byte {offset}")
    first = data[offset]
    length = 1
    while length <= max_bytes and not first & (0x80 >> (length - 1)):
        length += 1
    if length > max_bytes:
        raise WebmError(f"invalid variable-length integer at byte {offset}")
    if offset + length > len(data):
        raise WebmError(f"truncated at byte {offset}")
    value = first if keep_marker else first & (0xFF >> length)
    for byte in data[offset + 1:offset + length]:
        value = (value << 8) | byte
    all_ones = not keep_marker and value == (1 << (7 * length)) - 1
    return value, length, all_ones


def _uint(payload: bytes) -> int:
    if len(payload) > 8:
        raise WebmError("an unsigned integer element is longer than 8 bytes")
    return int.from_bytes(payload, "big")


def _float(payload: bytes) -> float:
    if len(payload) == 4:
        return float(struct.unpack(">f", payload)[0])
    if len(payload) == 8:
        return float(struct.unpack(">d", payload)[0])
    if not payload:
        return 0.0
    raise WebmError(f"a float element is {len(payload)} bytes long (4 or 8 expected)")


def _block_timestamp(payload: bytes) -> int:
    """The signed 16-bit timestamp of a (Simple)Block, relative to its Cluster's."""
    _, track_length, _ = _vint(payload, 0, MAX_SIZE_BYTES, keep_marker=False)
    if len(payload) < track_length + 3:
        raise WebmError("a block is shorter than its header")
    return int(struct.unpack(">h", payload[track_length:track_length + 2])[0])


def read_webm(data: bytes) -> WebmInfo:
    """Measure a WebM/Matroska file. Raises WebmError when it is not one or is malformed."""
    if len(data) > MAX_WEBM_BYTES:
        raise WebmError(f"the file is over {MAX_WEBM_BYTES} bytes")
    if not data.startswith(b"\x1a\x45\xdf\xa3"):
        raise WebmError("it does not start with an EBML header (not a WebM/Matroska file)")
    doc_type = ""
    scale = DEFAULT_TIMESTAMP_SCALE_NS
    duration: float | None = None
    width = height = None
    cluster_time: int | None = None
    blocks, last_block = 0, 0
    seen_segment = False
    offset, elements = 0, 0
    while offset < len(data):
        elements += 1
        if elements > MAX_ELEMENTS:
            raise WebmError(f"more than {MAX_ELEMENTS} elements")
        element, id_length, _ = _vint(data, offset, MAX_ID_BYTES, keep_marker=True)
        size, size_length, unknown = _vint(data, offset + id_length, MAX_SIZE_BYTES, keep_marker=False)
        start = offset + id_length + size_length
        if unknown and element not in _UNKNOWN_SIZE_ALLOWED:
            raise WebmError(f"element 0x{element:X} at byte {offset} has an unknown size")
        if not unknown and start + size > len(data):
            raise WebmError(f"element 0x{element:X} at byte {offset} runs past the end of the file (truncated?)")
        if element in _WALKED:
            seen_segment |= element == SEGMENT
            if element == CLUSTER:
                cluster_time = None
            offset = start
            continue
        payload = data[start:start + size]
        offset = start + size
        if element == EBML_HEADER:
            doc_type = _doc_type(payload)
        elif element == TIMESTAMP_SCALE:
            scale = _uint(payload)
            if scale == 0:
                raise WebmError("the TimestampScale is 0")
        elif element == DURATION:
            duration = _float(payload)
        elif element == PIXEL_WIDTH:
            width = _uint(payload)
        elif element == PIXEL_HEIGHT:
            height = _uint(payload)
        elif element == CLUSTER_TIMESTAMP:
            cluster_time = _uint(payload)
        elif element in (SIMPLE_BLOCK, BLOCK):
            if cluster_time is None:
                raise WebmError(f"a block at byte {start} comes before its Cluster's Timestamp")
            blocks += 1
            last_block = max(last_block, cluster_time + _block_timestamp(payload))
    if doc_type not in ("webm", "matroska"):
        raise WebmError(f"the DocType is {doc_type[:40]!r}, not webm")
    if not seen_segment:
        raise WebmError("no Segment")
    if duration is not None and not 0 <= duration < 1e15:
        raise WebmError("the Duration is not a sensible number")
    seconds = scale / 1e9
    return WebmInfo(doc_type=doc_type, duration_seconds=None if duration is None else duration * seconds,
                    blocks=blocks, last_block_seconds=last_block * seconds, width=width, height=height)


def _doc_type(header: bytes) -> str:
    offset = 0
    while offset < len(header):
        element, id_length, _ = _vint(header, offset, MAX_ID_BYTES, keep_marker=True)
        size, size_length, unknown = _vint(header, offset + id_length, MAX_SIZE_BYTES, keep_marker=False)
        start = offset + id_length + size_length
        if unknown or start + size > len(header):
            raise WebmError("the EBML header is malformed")
        if element == DOC_TYPE:
            return header[start:start + size].rstrip(b"\x00").decode("ascii", "replace")
        offset = start + size
    return ""
