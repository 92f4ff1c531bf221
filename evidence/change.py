"""Change detection: how a watch's new capture differs from its previous one (``evidence/change.json``).

``compare(previous, current)`` is pure and offline. ``previous`` is the previous capture's sealed
(or just built) package, read with the verifier's strict reader, every file checked against the
manifest's hash before it is compared. ``current`` is either a capture's files on disk before its
manifest exists (``CaptureFiles.from_files``: the change record becomes one of the artifacts the
manifest signs) or another package, so two packages can be compared after the fact.

The record states, before and after: the HTTP status and final URL, a summary of the visible
text's difference, the perceptual distance of the screenshots, and the value of each key field the
watch marks; then one classification:

- ``removed``: the current page shows no content (404/410/451, an empty page, or a removal notice);
- ``reappeared``: the previous page showed none, the current one does;
- ``changed``: status, final URL, visible text or a key field differ, or the screenshots differ by
  more than ``SCREENSHOT_CHANGED_FRACTION``;
- ``unchanged``: none of that.

Text and fields are compared exactly: "unchanged" is a statement to a court that nothing a reader
could see changed, so a changed digit must count. Only the screenshot comparison has a tolerance,
because two renderings of one page differ by noise (see ``SCREENSHOT_CHANGED_FRACTION``).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evidence.page_text import MAX_HTML_BYTES, KeyField, PageText, bounded, decode_html, key_field_values, page_text
from evidence.perceptual_hash import ALGORITHM, HASH_BITS, ScreenshotError, ScreenshotHash, screenshot_hash
from evidence.removal import Removal, removal
from verifier.capture_format import DOM_PATH, SCREENSHOT_PATH, SOURCE_PATH
from verifier.change_record import ChangeRecord
from verifier.errors import InvalidPackage, TiezhengError
from verifier.package import Package, open_package

#: dHash bits that may differ (of 256) before two screenshots count as looking different. Re-rendering
#: one page with 1-pixel noise moves 0 bits; swapping the product picture of a listing moves 29
#: (0.11), and a page that loses its picture 39 (tests/evidence/test_change.py measures these).
#: Over 0.06 (16 bits or more) sits between, leaning to "changed": a false "changed" costs a look, a false
#: "unchanged" hides a change.
SCREENSHOT_CHANGED_FRACTION = 0.06
#: Lines of added and of removed text quoted in the record; the counts cover all of them.
MAX_EXCERPT_LINES = 5
#: A full-page screenshot PNG; the pixel limit is checked again when it is decoded.
MAX_SCREENSHOT_BYTES = 64 << 20


class ChangeError(TiezhengError, ValueError):
    """The captures cannot be compared: the previous package is unreadable, damaged or not a capture."""


@dataclass(frozen=True)
class CaptureFiles:
    """What ``compare`` reads of one capture. Any file may be missing (None); the record then says so."""

    http_status: int | None
    final_url: str
    dom_html: bytes | None = None
    source_html: bytes | None = None
    screenshot_png: bytes | None = field(default=None, repr=False)
    #: Known only for a package: the previous capture's identity, which change.json names.
    fingerprint: bytes | None = None
    evidence_id: str | None = None
    captured_at: str | None = None
    #: Files present but over their size limit: left out of the comparison, and the record says so.
    oversized: tuple[str, ...] = ()

    @classmethod
    def from_files(cls, files: Mapping[str, Path], *, http_status: int | None, final_url: str) -> CaptureFiles:
        """A capture's files on disk, by their path in the package (``evidence/dom.html`` ...), before
        its manifest is made. Raises ChangeError when a file cannot be read."""
        oversized: list[str] = []
        return cls(http_status=http_status, final_url=final_url,
                   dom_html=_read_file(files.get(DOM_PATH), DOM_PATH, MAX_HTML_BYTES, oversized),
                   source_html=_read_file(files.get(SOURCE_PATH), SOURCE_PATH, MAX_HTML_BYTES, oversized),
                   screenshot_png=_read_file(files.get(SCREENSHOT_PATH), SCREENSHOT_PATH, MAX_SCREENSHOT_BYTES,
                                             oversized),
                   oversized=tuple(oversized))

    @classmethod
    def from_package(cls, path: Path) -> CaptureFiles:
        """A capture package, read strictly. Raises ChangeError when it is unusable, not a web capture,
        or a file differs from the hash its manifest states."""
        try:
            package = open_package(path)
        except InvalidPackage as exc:
            raise ChangeError(f"{path.name}: {exc.diagnostics()}") from exc
        manifest = package.manifest
        if manifest.kind != "web-capture":
            raise ChangeError(f"{path.name} is a {manifest.kind} package, not a web capture")
        status = manifest.target.get("http_status")
        final_url = manifest.target.get("final_url")
        ended = manifest.capture.get("ended_at")
        oversized: list[str] = []
        return cls(http_status=status if isinstance(status, int) and not isinstance(status, bool) else None,
                   final_url=final_url if isinstance(final_url, str) else "",
                   dom_html=_read_member(package, DOM_PATH, MAX_HTML_BYTES, oversized),
                   source_html=_read_member(package, SOURCE_PATH, MAX_HTML_BYTES, oversized),
                   screenshot_png=_read_member(package, SCREENSHOT_PATH, MAX_SCREENSHOT_BYTES, oversized),
                   fingerprint=package.fingerprint, evidence_id=manifest.evidence_id,
                   captured_at=ended if isinstance(ended, str) else None, oversized=tuple(oversized))


def _read_file(path: Path | None, name: str, limit: int, oversized: list[str]) -> bytes | None:
    if path is None:
        return None
    try:
        with path.open("rb") as stream:
            data = stream.read(limit + 1)
    except OSError as exc:
        raise ChangeError(f"cannot read {path.name}: {exc.strerror}") from exc
    if len(data) > limit:
        oversized.append(name)
        return None
    return data


def _read_member(package: Package, name: str, limit: int, oversized: list[str]) -> bytes | None:
    """The entry's bytes, checked against the manifest's hash: a damaged previous package must not be
    compared as if it were the sealed one."""
    listed = next((a for a in package.manifest.artifacts if a.path == name), None)
    if listed is None or name not in package.entries:
        return None
    if package.entries[name].size > limit:
        oversized.append(name)
        return None
    try:
        data = package.read(name, limit)
    except InvalidPackage as exc:
        raise ChangeError(f"{package.path.name}: {exc.diagnostics()}") from exc
    if hashlib.sha256(data).hexdigest() != listed.sha256:
        raise ChangeError(f"{package.path.name}: {name} is not the file its manifest lists (hash differs)")
    return data


@dataclass(frozen=True)
class _Reading:
    """One capture as compared: its text, its removal verdict, its screenshot hash."""

    files: CaptureFiles
    text: PageText | None
    html: str | None
    removal: Removal | None
    screenshot: ScreenshotHash | None
    screenshot_error: str | None


def _reading(files: CaptureFiles) -> _Reading:
    page = files.dom_html if files.dom_html is not None else files.source_html
    html = decode_html(page) if page is not None else None
    text = page_text(html) if html is not None else None
    shot: ScreenshotHash | None = None
    error = None
    if files.screenshot_png is not None:
        try:
            shot = screenshot_hash(files.screenshot_png)
        except ScreenshotError as exc:
            error = bounded(str(exc))
    return _Reading(files=files, text=text, html=html, removal=removal(files.http_status, text),
                    screenshot=shot, screenshot_error=error)


@dataclass(frozen=True)
class TextDiff:
    """Visible lines only in the previous page (``removed``) and only in the current one (``added``),
    counted as multisets: a line that moved is not a change; ``reordered`` says when only order changed."""

    lines_before: int
    lines_after: int
    added: int
    removed: int
    added_excerpt: tuple[str, ...]
    removed_excerpt: tuple[str, ...]
    reordered: bool
    title_before: str
    title_after: str

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed or self.reordered or self.title_before != self.title_after)

    def to_json(self) -> dict[str, Any]:
        return {"lines_before": self.lines_before, "lines_after": self.lines_after, "added": self.added,
                "removed": self.removed, "reordered": self.reordered,
                "excerpt": {"added": list(self.added_excerpt), "removed": list(self.removed_excerpt)},
                "title": {"before": self.title_before, "after": self.title_after}}


def text_diff(before: PageText, after: PageText) -> TextDiff:
    old, new = Counter(before.lines), Counter(after.lines)
    gone, came = old - new, new - old
    return TextDiff(lines_before=len(before.lines), lines_after=len(after.lines),
                    added=sum(came.values()), removed=sum(gone.values()),
                    added_excerpt=_excerpt(after.lines, came), removed_excerpt=_excerpt(before.lines, gone),
                    reordered=not came and not gone and before.lines != after.lines,
                    title_before=before.title, title_after=after.title)


def _excerpt(lines: Sequence[str], wanted: Counter[str]) -> tuple[str, ...]:
    """The first ``MAX_EXCERPT_LINES`` of ``wanted``, in page order, bounded."""
    left = Counter(wanted)
    shown: list[str] = []
    for line in lines:
        if left[line] > 0:
            left[line] -= 1
            shown.append(bounded(line))
            if len(shown) == MAX_EXCERPT_LINES:
                break
    return tuple(shown)


#: What ``compare`` returns: the record ``evidence/change.json`` holds (written and read by verifier/).
Change = ChangeRecord


def _as_files(capture: CaptureFiles | Path) -> CaptureFiles:
    return CaptureFiles.from_package(capture) if isinstance(capture, Path) else capture


def compare(previous: CaptureFiles | Path, current: CaptureFiles | Path, *,
            key_fields: Sequence[KeyField] = ()) -> ChangeRecord:
    """Compare ``current`` with ``previous`` (each a package path or ``CaptureFiles``); return the record
    whose ``canonical_bytes()`` are ``evidence/change.json``.

    ``previous`` must carry its fingerprint (a package always does). Raises ChangeError when either
    side cannot be read, and FieldSpecError (from ``page_text``) for more key fields than allowed.
    """
    before, after = _reading(_as_files(previous)), _reading(_as_files(current))
    if before.files.fingerprint is None:
        raise ChangeError("the previous capture has no fingerprint: compare with its package")
    signals: list[str] = []
    status = {"before": before.files.http_status, "after": after.files.http_status}
    if status["before"] != status["after"]:
        signals.append("http_status")
    urls = {"before": bounded(before.files.final_url), "after": bounded(after.files.final_url)}
    if before.files.final_url != after.files.final_url:
        signals.append("final_url")
    text = text_diff(before.text, after.text) if before.text is not None and after.text is not None else None
    if text is not None and text.changed:
        signals.append("text")
    screenshot = _screenshot_record(before, after)
    if screenshot.get("changed"):
        signals.append("screenshot")
    fields = _field_records(before.html, after.html, key_fields)
    if any(f["changed"] for f in fields):
        signals.append("key_fields")
    classification = _classify(before.removal, after.removal, signals)
    body = {"http_status": status, "final_url": urls,
            "removed": {"before": before.removal.to_json() if before.removal else None,
                        "after": after.removal.to_json() if after.removal else None},
            "text": text.to_json() if text is not None else None,
            "screenshot": screenshot, "key_fields": fields, "signals": signals,
            "not_compared": {"before": list(before.files.oversized), "after": list(after.files.oversized),
                             "why": "over the size this comparison reads"},
            "thresholds": {"screenshot_changed_fraction": SCREENSHOT_CHANGED_FRACTION,
                           "text": "any visible line added, removed or reordered, or the title changed",
                           "key_fields": "any difference in the extracted text"}}
    return ChangeRecord(classification=classification, previous_fingerprint=before.files.fingerprint,
                  previous_evidence_id=bounded(before.files.evidence_id) if before.files.evidence_id else None,
                  previous_captured_at=bounded(before.files.captured_at) if before.files.captured_at else None,
                  body=body)


def _classify(before: Removal | None, after: Removal | None, signals: Sequence[str]) -> str:
    if after is not None:
        return "removed"
    if before is not None:
        return "reappeared"
    return "changed" if signals else "unchanged"


def _screenshot_record(before: _Reading, after: _Reading) -> dict[str, Any]:
    record: dict[str, Any] = {"algorithm": ALGORITHM, "bits": HASH_BITS}
    if before.screenshot is None or after.screenshot is None:
        missing = [side for side, r in (("before", before), ("after", after)) if r.screenshot is None]
        errors = {side: r.screenshot_error for side, r in (("before", before), ("after", after))
                  if r.screenshot_error}
        return {**record, "compared": False, "missing": missing, "errors": errors}
    distance = before.screenshot.distance(after.screenshot)
    fraction = round(distance / HASH_BITS, 4)
    return {**record, "compared": True, "distance": distance, "fraction": fraction,
            "changed": fraction > SCREENSHOT_CHANGED_FRACTION,
            "size_before": [before.screenshot.width, before.screenshot.height],
            "size_after": [after.screenshot.width, after.screenshot.height]}


def _field_records(before: str | None, after: str | None, fields: Sequence[KeyField]) -> list[dict[str, Any]]:
    if not fields:
        return []
    old = key_field_values(before, fields) if before is not None else [None] * len(fields)
    new = key_field_values(after, fields) if after is not None else [None] * len(fields)
    return [{"name": f.name, "css_selector": f.css_selector, "before": b, "after": a, "changed": a != b}
            for f, b, a in zip(fields, old, new, strict=True)]
