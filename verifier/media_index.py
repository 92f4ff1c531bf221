"""The media index of a web capture (``evidence/media.json``, format ``tiezheng-media/1``): reader and rules.

Every image, audio and video response the browser received through the recorder is one item:
``{"url", "media_type", "status", "size", "sha256", "warc_record_id", "content_range", "saved_as"}``.
The item's bytes are its WARC response record's *payload*: the HTTP body with its transfer coding and
the content codings the standard library knows removed (``verifier.http_body.decode_body``, the same
rule as ``source.html``), so a picture's sha256 is the sha256 of the picture file. ``saved_as`` names the
artifact (``media/<sha256>.<ext>``) that holds the same bytes when the capture saved media separately.

The capture (``evidence.media_index``) writes the index with ``media_payload`` below and P2
(``verifier.checks.media``) re-derives every item from the WARC with the same function.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from verifier.errors import VerificationError
from verifier.http_body import HttpResponse, decode_body, parse_response

MEDIA_INDEX_PATH = "evidence/media.json"
MEDIA_FORMAT = "tiezheng-media/1"
MEDIA_FOLDER = "media/"
MEDIA_ROLE = "media"
MEDIA_INDEX_ROLE = "media-index"
MAX_MEDIA_ITEMS = 5000
MAX_MEDIA_INDEX_BYTES = 16 << 20
#: One item's payload; the recorder keeps no response over 64 MiB anyway.
MAX_MEDIA_PAYLOAD_BYTES = 64 << 20
MEDIA_KINDS = ("image/", "audio/", "video/")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_SAVED = re.compile(r"^media/[0-9a-f]{64}\.[a-z0-9]{1,8}$")


class MediaIndexError(VerificationError):
    """The media index is malformed."""


def media_type_of(response: HttpResponse) -> str:
    """The response's media type, lower-case and without parameters ("" when it sent none)."""
    return (response.header("content-type") or "").split(";", 1)[0].strip().lower()


def is_media(media_type: str) -> bool:
    return media_type.startswith(MEDIA_KINDS)


def media_payload(block: bytes) -> tuple[HttpResponse, bytes]:
    """The parsed response in a WARC response record's ``block`` and its payload. Raises HttpFormatError."""
    response = parse_response(block)
    return response, decode_body(response, limit=MAX_MEDIA_PAYLOAD_BYTES).data


@dataclass(frozen=True)
class MediaItem:
    url: str
    media_type: str
    status: int
    size: int
    sha256: str
    warc_record_id: str
    content_range: str | None
    saved_as: str | None

    def json(self) -> dict[str, Any]:
        return {"url": self.url, "media_type": self.media_type, "status": self.status, "size": self.size,
                "sha256": self.sha256, "warc_record_id": self.warc_record_id, "content_range": self.content_range,
                "saved_as": self.saved_as}


def _item(value: Any, i: int) -> MediaItem:
    where = f"media.json items[{i}]"
    if not isinstance(value, Mapping):
        raise MediaIndexError(f"{where} is not an object")
    strings = ("url", "media_type", "sha256", "warc_record_id")
    if not all(isinstance(value.get(k), str) for k in strings):
        raise MediaIndexError(f"{where} lacks one of {', '.join(strings)}")
    for key in ("status", "size"):
        if not isinstance(value.get(key), int) or isinstance(value.get(key), bool) or value[key] < 0:
            raise MediaIndexError(f"{where} has no valid {key}")
    if not _HEX64.match(value["sha256"]):
        raise MediaIndexError(f"{where} sha256 is not 64 lowercase hex digits")
    saved = value.get("saved_as")
    if saved is not None and (not isinstance(saved, str) or not _SAVED.match(saved)):
        raise MediaIndexError(f"{where} saved_as is not media/<sha256>.<ext>")
    content_range = value.get("content_range")
    return MediaItem(url=value["url"], media_type=value["media_type"], status=value["status"], size=value["size"],
                     sha256=value["sha256"], warc_record_id=value["warc_record_id"],
                     content_range=content_range if isinstance(content_range, str) else None, saved_as=saved)


def parse_media_index(data: bytes) -> tuple[MediaItem, ...]:
    """The items of a media index. Raises MediaIndexError."""
    try:
        index = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MediaIndexError(f"media.json is not JSON: {exc}") from None
    if not isinstance(index, dict) or index.get("format") != MEDIA_FORMAT or not isinstance(index.get("items"), list):
        raise MediaIndexError(f"media.json is not in the {MEDIA_FORMAT} format")
    if len(index["items"]) > MAX_MEDIA_ITEMS:
        raise MediaIndexError(f"media.json lists over {MAX_MEDIA_ITEMS} items")
    return tuple(_item(value, i) for i, value in enumerate(index["items"]))
