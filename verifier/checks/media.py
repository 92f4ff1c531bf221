"""P2, embedded media: the media index agrees with the WARC, and saved media with the index.

For a capture with ``evidence/media.json`` (``verifier.media_index``):
1. each item names a WARC response record for its URL, and that record's payload has the item's size
   and sha256 (the record is read and decoded here, not taken from the index);
2. each saved file (``media/<sha256>.<ext>``, an artifact) holds bytes whose sha256 is in its name and
   is the sha256 of an indexed item that names it.
A capture made before media were indexed has no index and is not judged on it.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict

from verifier.checks.capture_material import warc_records
from verifier.checks.context import Context
from verifier.court_time import plural
from verifier.errors import InvalidPackage, TiezhengError
from verifier.media_index import (
    MAX_MEDIA_INDEX_BYTES,
    MEDIA_FOLDER,
    MEDIA_INDEX_PATH,
    MediaItem,
    media_payload,
    parse_media_index,
)
from verifier.package import Package

#: Media listed in the report's facts (terminal, JSON); the HTML and PDF reports read the index themselves.
MAX_FACT_ITEMS = 50


def read_media_items(package: Package) -> tuple[MediaItem, ...] | None:
    """The media index's items, or None when the capture has no index. Raises TiezhengError."""
    if MEDIA_INDEX_PATH not in package.entries:
        return None
    try:
        data = package.read(MEDIA_INDEX_PATH, MAX_MEDIA_INDEX_BYTES)
    except (KeyError, InvalidPackage) as exc:
        raise InvalidPackage(f"media.json cannot be read: {exc}") from exc
    return parse_media_index(data)


def _warc_problems(ctx: Context, items: tuple[MediaItem, ...]) -> list[str]:
    by_record: dict[str, list[MediaItem]] = defaultdict(list)
    for item in items:
        by_record[item.warc_record_id].append(item)
    problems: list[str] = []
    seen: set[str] = set()
    for record in warc_records(ctx, lambda h: h.get("warc-record-id") in by_record):
        listed = by_record.get(record.record_id)
        if not listed or record.block is None or record.type != "response":
            continue
        seen.add(record.record_id)
        try:
            _, payload = media_payload(record.block)
        except TiezhengError as exc:
            problems.append(f"the WARC record of medium {listed[0].url[:120]} cannot be decoded: {exc}")
            continue
        digest = hashlib.sha256(payload).hexdigest()
        for item in listed:
            if record.target_uri != item.url:
                problems.append(f"medium {item.url[:120]} names a WARC record of {record.target_uri[:120]}")
            elif digest != item.sha256 or len(payload) != item.size:
                problems.append(f"medium {item.url[:120]}: the index says sha256 {item.sha256[:16]}… "
                                f"({item.size} bytes), its WARC payload is {digest[:16]}… ({len(payload)} bytes)")
    for record_id, listed in by_record.items():
        if record_id not in seen:
            problems.append(f"medium {listed[0].url[:120]} names WARC record {record_id[:60]}, which is not a "
                            "response in the WARC")
    return problems


def _saved_problems(ctx: Context, items: tuple[MediaItem, ...]) -> tuple[list[str], int]:
    named = {item.saved_as: item.sha256 for item in items if item.saved_as is not None}
    problems: list[str] = []
    saved = [a.path for a in ctx.package.manifest.artifacts if a.path.startswith(MEDIA_FOLDER)]
    for path in saved:
        if path not in ctx.package.entries:
            continue  # P2 already reports a listed artifact that is missing
        digest, _ = ctx.package.hash_entry(path)
        if path not in named:
            problems.append(f"{path} is saved but no media index item names it")
        elif digest.hex() != named[path] or not path.startswith(f"{MEDIA_FOLDER}{digest.hex()}."):
            problems.append(f"{path} holds bytes with sha256 {digest.hex()[:16]}…, not the indexed medium's")
    for path in named:
        if path not in saved:
            problems.append(f"the media index names {path}, which the manifest does not list")
    return problems, len(saved)


def media_outcome(ctx: Context) -> tuple[list[str], str | None]:
    """P2's findings on media: problems, and a clause for the reason (None without a media index)."""
    try:
        items = read_media_items(ctx.package)
    except TiezhengError as exc:
        return [str(exc)], None
    if items is None:
        return [], None
    problems = _warc_problems(ctx, items)
    saved_problems, saved = _saved_problems(ctx, items)
    problems += saved_problems
    if not problems:
        ctx.facts["media"] = {"count": len(items), "items": [
            {"url": i.url, "media_type": i.media_type, "size": i.size, "sha256": i.sha256, "saved_as": i.saved_as}
            for i in items[:MAX_FACT_ITEMS]]}
    clause = (f"{plural(len(items), 'embedded medium', 'embedded media')} "
              f"{'matches its WARC payload' if len(items) == 1 else 'match their WARC payloads'}")
    if saved:
        clause += f", {plural(saved, 'saved medium file')} {'matches' if saved == 1 else 'match'} the index"
    return problems, clause
