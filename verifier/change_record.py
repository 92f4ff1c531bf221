"""The change record, ``evidence/change.json`` (format ``tiezheng-change/1``): written and read here.

``evidence/change.py`` computes a comparison and builds a ``ChangeRecord``; the timeline verifier
and its document read the record back from sealed packages with ``parse_change``. Both sides use
this one module, so the writer and the reader cannot drift (STYLE habit 10). Read from a package,
the record is hostile input: it is parsed strictly, its fields are type-checked where they are
used, and every string it yields for display is bounded.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from verifier import canonical
from verifier.court_time import plural
from verifier.errors import InvalidPackage
from verifier.package import parse_json

CHANGE_FORMAT = "tiezheng-change/1"
CLASSIFICATIONS = ("unchanged", "changed", "removed", "reappeared")
#: A change record quotes a few bounded lines and fields; far below this.
MAX_CHANGE_BYTES = 256 << 10
#: The longest summary line a timeline shows.
MAX_SUMMARY_CHARS = 300
_FINGERPRINT = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class ChangeRecord:
    """How a capture differs from its watch's previous capture. ``body`` holds the comparison's
    fields (status, final URL, text, screenshot, key fields, signals, thresholds)."""

    classification: str
    previous_fingerprint: bytes
    previous_evidence_id: str | None = None
    previous_captured_at: str | None = None
    body: Mapping[str, Any] = field(default_factory=dict, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {"format": CHANGE_FORMAT, "classification": self.classification,
                "previous": {"fingerprint": self.previous_fingerprint.hex(),
                             "evidence_id": self.previous_evidence_id, "captured_at": self.previous_captured_at},
                **self.body}

    def canonical_bytes(self) -> bytes:
        """The bytes of ``evidence/change.json``: RFC 8785 canonical JSON, as the manifest is."""
        return canonical.canonical_json(self.to_json())

    @property
    def removed_before(self) -> bool:
        """Whether the previous capture already showed the content removed."""
        removed = self.body.get("removed")
        return isinstance(removed, Mapping) and isinstance(removed.get("before"), Mapping)

    @property
    def summary(self) -> str:
        """One line for a timeline: "changed: price: ¥ 99.00 → ¥ 79.00; 1 line added, 1 removed"."""
        body = self.body
        if self.classification == "removed":
            after = _mapping(_mapping(body.get("removed")).get("after"))
            how = str(after.get("reason") or "").replace("http-", "HTTP ")
            phrase = after.get("phrase")
            detail = f"{how}: {phrase}" if isinstance(phrase, str) and phrase else how
            return _bounded(f"removed ({detail})" if detail else "removed")
        listed = body.get("signals")
        signals: list[Any] = listed if isinstance(listed, list) else []
        parts = []
        fields = body.get("key_fields")
        for value in fields if isinstance(fields, list) else []:
            item = _mapping(value)
            if item.get("changed") is True:
                parts.append(f"{_text(item.get('name'))}: {_text(item.get('before'))} → {_text(item.get('after'))}")
        if "http_status" in signals:
            status = _mapping(body.get("http_status"))
            parts.append(f"HTTP {_text(status.get('before'))} → {_text(status.get('after'))}")
        if "final_url" in signals:
            parts.append(f"final URL → {_text(_mapping(body.get('final_url')).get('after'))}")
        text = _mapping(body.get("text"))
        added, removed = text.get("added"), text.get("removed")
        if isinstance(added, int) and isinstance(removed, int) and (added or removed):
            parts.append(f"{plural(added, 'line')} added, {removed} removed")
        shot = _mapping(body.get("screenshot"))
        if shot.get("changed") is True and isinstance(shot.get("fraction"), int | float):
            parts.append(f"screenshot {round(100 * shot['fraction'])}% different")
        return _bounded(f"{self.classification}: {'; '.join(parts)}" if parts else self.classification)


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _text(value: Any) -> str:
    return "—" if value is None or value == "" else str(value)


def _bounded(text: str) -> str:
    return text if len(text) <= MAX_SUMMARY_CHARS else text[:MAX_SUMMARY_CHARS - 1] + "…"


def parse_change(data: bytes) -> ChangeRecord:
    """Parse ``evidence/change.json`` bytes strictly. Raises InvalidPackage for anything malformed."""
    if len(data) > MAX_CHANGE_BYTES:
        raise InvalidPackage(f"evidence/change.json is over {MAX_CHANGE_BYTES} bytes")
    raw = parse_json(data, "evidence/change.json")
    if not isinstance(raw, dict) or raw.get("format") != CHANGE_FORMAT:
        raise InvalidPackage(f"evidence/change.json is not a {CHANGE_FORMAT} record")
    classification = raw.get("classification")
    if classification not in CLASSIFICATIONS:
        raise InvalidPackage(f"evidence/change.json: classification must be one of {', '.join(CLASSIFICATIONS)}")
    previous = raw.get("previous")
    fingerprint = previous.get("fingerprint") if isinstance(previous, dict) else None
    if not isinstance(fingerprint, str) or not _FINGERPRINT.match(fingerprint):
        raise InvalidPackage("evidence/change.json: previous.fingerprint must be 64 lowercase hex digits")
    assert isinstance(previous, dict)  # a fingerprint was found in it
    evidence_id, captured_at = previous.get("evidence_id"), previous.get("captured_at")
    body = {k: v for k, v in raw.items() if k not in ("format", "classification", "previous")}
    return ChangeRecord(classification=classification, previous_fingerprint=bytes.fromhex(fingerprint),
                        previous_evidence_id=evidence_id if isinstance(evidence_id, str) else None,
                        previous_captured_at=captured_at if isinstance(captured_at, str) else None, body=body)
