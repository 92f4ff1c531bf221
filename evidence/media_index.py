"""Embedded media as first-class evidence: the media index, and with ``save_media`` each file on its own.

After the recorder stops, the capture's own WARC is read once more (``verifier.warc_reader``). Each
response record of a browser exchange whose Content-Type is image/*, audio/* or video/* becomes one
item of ``evidence/media.json`` (format in ``verifier.media_index``), hashed over its payload as the
verifier will re-derive it. With ``save_media`` each distinct payload is also written as
``media/<sha256>.<ext>`` at full resolution, exactly the bytes served (a 206 partial response is
saved as the part that was served, and its item says so), up to ``MAX_SAVED_MEDIA_BYTES`` in all;
what does not fit is indexed and listed as not saved, never silently dropped.
"""

from __future__ import annotations

import hashlib
import json
import mimetypes
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evidence.recorder import Exchange
from verifier.errors import TiezhengError
from verifier.media_index import (
    MAX_MEDIA_ITEMS,
    MEDIA_FOLDER,
    MEDIA_FORMAT,
    MediaItem,
    is_media,
    media_payload,
    media_type_of,
)
from verifier.warc_reader import iter_warc

MAX_SAVED_MEDIA_BYTES = 512 << 20
_EXTENSION = re.compile(r"^[a-z0-9]{1,8}$")
#: Extensions the standard table lacks or spells oddly on some systems.
_KNOWN_EXTENSIONS = {"image/jpeg": "jpg", "image/webp": "webp", "image/avif": "avif", "image/svg+xml": "svg",
                     "video/webm": "webm", "video/mp4": "mp4", "audio/mpeg": "mp3", "audio/ogg": "ogg",
                     "image/x-icon": "ico", "image/vnd.microsoft.icon": "ico"}


def extension_for(media_type: str) -> str:
    """A file extension for ``media_type`` (``[a-z0-9]``, 1-8 characters); ``bin`` when none is known."""
    guess = _KNOWN_EXTENSIONS.get(media_type) or (mimetypes.guess_extension(media_type) or "").lstrip(".")
    return guess if _EXTENSION.match(guess) else "bin"


@dataclass
class MediaOutcome:
    """The index's bytes, the saved files (path in package -> file), and counts for the call log."""

    index: bytes
    items: list[MediaItem]
    saved: dict[str, Path] = field(default_factory=dict)
    not_saved: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {"items": len(self.items), "bytes": sum(i.size for i in self.items), "saved": len(self.saved),
                "not_saved": len(self.not_saved)}


def build_media(warc_path: Path, exchanges: Iterable[Exchange], work: Path, *, save: bool) -> MediaOutcome:
    """Index the media responses among ``exchanges`` from the WARC at ``warc_path``; with ``save``,
    write each distinct payload into ``work``. Raises TiezhengError only for a WARC it cannot read."""
    wanted = {e.response_id: e for e in exchanges}
    items: list[MediaItem] = []
    saved: dict[str, Path] = {}
    not_indexed: list[dict[str, Any]] = []
    not_saved: list[dict[str, Any]] = []
    saved_bytes = 0
    with warc_path.open("rb") as stream:
        for record in iter_warc(stream, want_block=lambda h: h.get("warc-record-id") in wanted):
            exchange = wanted.get(record.record_id)
            if exchange is None or record.block is None:
                continue
            try:
                response, payload = media_payload(record.block)
            except TiezhengError as exc:
                if is_media(_head_type(record.block)):
                    not_indexed.append({"url": exchange.url[:2000], "reason": str(exc)[:300]})
                continue
            media_type = media_type_of(response)
            if not is_media(media_type) or response.status not in (200, 203, 206):
                continue
            if len(items) == MAX_MEDIA_ITEMS:
                not_indexed.append({"url": exchange.url[:2000], "reason": f"over {MAX_MEDIA_ITEMS} items"})
                continue
            digest = hashlib.sha256(payload).hexdigest()
            saved_as = None
            if save:
                name = f"{MEDIA_FOLDER}{digest}.{extension_for(media_type)}"
                if name in saved:
                    saved_as = name
                elif saved_bytes + len(payload) > MAX_SAVED_MEDIA_BYTES:
                    not_saved.append({"url": exchange.url[:2000], "sha256": digest,
                                      "reason": f"the saved media would exceed {MAX_SAVED_MEDIA_BYTES} bytes"})
                else:
                    target = work / name.replace("/", "__")
                    target.write_bytes(payload)
                    saved[name], saved_as, saved_bytes = target, name, saved_bytes + len(payload)
            items.append(MediaItem(url=exchange.url, media_type=media_type, status=response.status,
                                   size=len(payload), sha256=digest, warc_record_id=record.record_id,
                                   content_range=response.header("content-range"), saved_as=saved_as))
    index = {"format": MEDIA_FORMAT,
             "payload": "each item's bytes are its WARC response record's body with the transfer coding and the "
                        "content codings removed; a 206 item is the part that was served",
             "saved": save, "max_saved_bytes": MAX_SAVED_MEDIA_BYTES if save else None,
             "items": [item.json() for item in items], "not_indexed": not_indexed, "not_saved": not_saved}
    return MediaOutcome(index=json.dumps(index, indent=1, ensure_ascii=False).encode(), items=items, saved=saved,
                        not_saved=not_saved)


def _head_type(block: bytes) -> str:
    head = block.split(b"\r\n\r\n", 1)[0].decode("latin-1", "replace").lower()
    match = re.search(r"^content-type:\s*([^;\r\n]+)", head, re.MULTILINE)
    return match.group(1).strip() if match else ""
