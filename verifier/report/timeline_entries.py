"""From a verified timeline to its document: one event per capture, named by what its change record says.

A watch's first capture is a ``capture``; a later one is a ``change``, a ``removal`` (the first
capture that finds the content gone; later ones that still find it gone are captures again) or a
``reappearance``, as its sealed ``evidence/change.json`` classifies it, and an unchanged one is a
``capture``. Each event links to the package file that proves it, by its name: the document is
meant to sit beside the packages. The verdicts go at the top, so the document never shows a
timeline as sound that did not verify.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from verifier.report.timeline import TimelineDocument, TimelineEntry
from verifier.timeline import TimelineReport
from verifier.timeline_checks import TIMELINE_CHECKS, Link
from verifier.wording import STATUS_ZH, VERDICT_ZH

EVENT_OF_CLASSIFICATION: Mapping[str, str] = {"changed": "change", "removed": "removal",
                                              "reappeared": "reappearance", "unchanged": "capture"}


def _kind(link: Link) -> str:
    if link.kind == "notice":
        return "notice"
    if link.kind == "notice-reply":
        return "reply"
    if link.change is None:
        return "capture"
    if link.change.classification == "removed" and link.change.removed_before:
        return "capture"  # still removed: the removal is the earlier event
    return EVENT_OF_CLASSIFICATION.get(link.change.classification, "capture")


def _content_present(link: Link) -> bool | None:
    """What the capture's sealed change record says of the content: there (changed, unchanged,
    reappeared), removed, or None with no record to say it (a first capture, a notice)."""
    if link.kind in ("notice", "notice-reply") or link.change is None:
        return None
    return link.change.classification != "removed"


def _notice_summary(link: Link) -> str | None:
    facts = link.report.facts

    def record(key: str) -> Mapping[str, Any]:
        value = facts.get(key)
        return value if isinstance(value, Mapping) else {}

    notice, target, provenance = record("notice"), record("target"), record("reply_provenance")
    if link.kind == "notice-reply":
        return (f"reply to {target.get('notice_id')}, DKIM pass for {provenance.get('domain')}"
                if provenance.get("domain")
                else f"reply to {target.get('notice_id')}; its origin is not shown (see N1)")
    parts = [f"{notice.get('action') or 'notice'} {notice.get('notice_id') or ''} version {notice.get('version')}",
             f"to {target.get('recipient')}" if target.get("recipient") else None]
    return " ".join(p for p in parts if p)


def _summary(link: Link) -> str | None:
    if link.kind in ("notice", "notice-reply"):
        return _notice_summary(link)
    if link.change is not None:
        return link.change.summary
    target = link.report.facts.get("target")
    url = target.get("final_url") if isinstance(target, Mapping) else None
    first = "first capture" if link.previous is None else None
    parts = [p for p in (first, url if isinstance(url, str) and url else None) if p]
    return ": ".join(parts) if parts else None


def timeline_entries(report: TimelineReport) -> list[TimelineEntry]:
    """One entry per readable package, at its capture time (its trusted time when it states none)."""
    entries = []
    for link in report.links:
        when = link.captured_at or link.tsa_time
        if when is None or link.evidence_id is None:
            continue  # an unusable package has no time and no id to show; the verdicts name it
        verdict = link.report.verdict.value
        entries.append(TimelineEntry(
            time=when, kind=_kind(link), evidence_id=link.evidence_id, fingerprint=link.fingerprint,
            status=f"{verdict} {VERDICT_ZH[verdict]}", anchor_tx=link.anchor_tx, thumbnail_png=link.thumbnail_png,
            link=link.file, summary=_summary(link), content_present=_content_present(link)))
    return entries


def timeline_document(report: TimelineReport, *, title: str | None = None,
                      generated_at: datetime | None = None) -> TimelineDocument:
    """The document of a verified (or failed) timeline, its verdict and TL checks stated first."""
    labels = []
    for what, values in (("subject", {link.subject for link in report.links}),
                         ("matter", {link.matter for link in report.links}),
                         ("watch", {link.watch for link in report.links})):
        shown = sorted(v for v in values if v)
        if shown:
            labels.append(f"{what}: {', '.join(shown)}")
    verdict = report.verdict.value
    notes = [(f"Timeline verification: {verdict}", f"时间线验证：{VERDICT_ZH[verdict]}")]
    for check in report.checks:
        title_en, title_zh = TIMELINE_CHECKS[check.id]
        notes.append((f"{check.id} {title_en}: {check.status.value}. {check.reason}",
                      f"{check.id} {title_zh}：{STATUS_ZH[check.status.value]}。{check.reason_zh}"))
    return TimelineDocument(title=title or "Timeline", entries=tuple(timeline_entries(report)),
                            subtitle=" · ".join(labels) or None, generated_at=generated_at or datetime.now(UTC),
                            notes=tuple(notes))
