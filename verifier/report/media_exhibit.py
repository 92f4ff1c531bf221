"""The embedded media a report lists: each indexed image, audio and video, with thumbnails for images.

Read from ``evidence/media.json`` (``verifier.media_index``) only when H1 and P2 passed, so every
listed hash is the sealed one and equals its WARC payload. A picture's thumbnail is made from its saved
file (``media/``) or else from its WARC record's payload, decoded by Pillow (the ``pdf`` extra) only
after its header size passed ``MAX_MEDIA_PIXELS``, and only for the first ``MAX_THUMBNAILS`` pictures.
Every string is passed through ``display_text`` here; renderers escape again for their medium.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from verifier.checks.media import read_media_items
from verifier.errors import TiezhengError
from verifier.media_index import MAX_MEDIA_PAYLOAD_BYTES, MediaItem, media_payload
from verifier.package import Package
from verifier.sanitize import display_text
from verifier.verdict import Report, Status
from verifier.warc_reader import iter_warc

MAX_LISTED_MEDIA = 200
MAX_THUMBNAILS = 24
THUMBNAIL_SIDE = 160
MAX_MEDIA_PIXELS = 40_000_000
#: What Pillow may decode for a thumbnail: the formats browsers show, never a format it would guess.
THUMBNAIL_FORMATS = ("PNG", "JPEG", "GIF", "WEBP")


@dataclass(frozen=True)
class MediaEntry:
    url: str
    media_type: str
    size: int
    sha256: str
    saved_as: str | None
    thumbnail_png: bytes | None = None


@dataclass(frozen=True)
class MediaList:
    entries: tuple[MediaEntry, ...] = ()
    #: How many items the index holds beyond those listed.
    more: int = 0


def thumbnail(data: bytes) -> bytes | None:
    """A PNG at most ``THUMBNAIL_SIDE`` pixels on each side, or None (no Pillow, undecodable, too large)."""
    try:
        from PIL import Image
    except ImportError:
        return None
    try:
        with Image.open(io.BytesIO(data), formats=list(THUMBNAIL_FORMATS)) as image:
            if image.width * image.height > MAX_MEDIA_PIXELS:
                return None
            image.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
            small = image.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
    out = io.BytesIO()
    small.save(out, format="PNG", optimize=True)
    return out.getvalue()


def _pictures(package: Package, items: tuple[MediaItem, ...]) -> dict[str, bytes]:
    """Payloads (by sha256) of the first pictures: from saved files, else from the WARC."""
    wanted = [i for i in items if i.media_type.startswith("image/")][:MAX_THUMBNAILS]
    found: dict[str, bytes] = {}
    for item in wanted:
        if item.saved_as and item.saved_as in package.entries:
            try:
                found[item.sha256] = package.read(item.saved_as, MAX_MEDIA_PAYLOAD_BYTES)
            except (TiezhengError, KeyError):
                continue
    records = {i.warc_record_id: i for i in wanted if i.sha256 not in found}
    if records and "archive/data.warc.gz" in package.entries:
        try:
            with package.open("archive/data.warc.gz") as stream:
                for record in iter_warc(stream, want_block=lambda h: h.get("warc-record-id") in records):
                    match = records.get(record.record_id)
                    if match is not None and record.block is not None:
                        found[match.sha256] = media_payload(record.block)[1]
        except TiezhengError:
            pass  # no thumbnails then; P2 already judged the WARC
    return found


def load_media(package: Package, report: Report) -> MediaList:
    """The media to list, or an empty list when there are none or H1/P2 did not pass."""
    statuses = {r.id: r.status for r in report.checks}
    if statuses.get("H1") is not Status.PASS or statuses.get("P2") not in (Status.PASS, Status.WARN):
        return MediaList()
    try:
        items = read_media_items(package) or ()
    except TiezhengError:
        return MediaList()
    listed = items[:MAX_LISTED_MEDIA]
    pictures = _pictures(package, listed)
    entries = tuple(MediaEntry(url=display_text(i.url), media_type=display_text(i.media_type), size=i.size,
                               sha256=i.sha256, saved_as=display_text(i.saved_as) if i.saved_as else None,
                               thumbnail_png=thumbnail(pictures[i.sha256]) if i.sha256 in pictures else None)
                    for i in listed)
    return MediaList(entries=entries, more=len(items) - len(listed))
