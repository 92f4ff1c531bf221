"""Verify a timeline: a watch's captures, each verified in full, then TL1 and TL2 over the set.

Every package runs all checks (``verify_opened``), as ``tiezheng-verify PACKAGE`` would; what places
it in the chain (its ``previous``, watch, capture time, trusted time, change record) is read into a
``Link``, and ``verifier.timeline_checks`` judges the links. The result is a ``TimelineReport``; its
verdict and exit code follow DESIGN.md §5/§6: a failed package or a failed TL check makes the
timeline ``failed`` (1); otherwise an unusable package makes it ``unusable`` (2) and missing trust
``cannot judge`` (3); otherwise it is verified (0).
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from verifier.capture_format import CHANGE_PATH
from verifier.chain_source import ChainSource, ChainSources
from verifier.change_record import MAX_CHANGE_BYTES, ChangeRecord, parse_change
from verifier.errors import InvalidPackage
from verifier.package import Package, open_package
from verifier.timeline_checks import TIMELINE_CHECKS, Link, TimelineCheck, check_chain, check_order
from verifier.timeline_input import timeline_packages
from verifier.trust import Trust
from verifier.verdict import Report, Status, Verdict, unusable
from verifier.verify import file_sha256, verify_opened
from verifier.wording import VERDICT_ZH

#: An evidence id as shown (ours are 33 characters).
MAX_EVIDENCE_ID_CHARS = 100
#: A subject, matter or transaction hash as shown.
MAX_LABEL_CHARS = 200
#: A watch id as shown; the manifest's own limits bound it further.
MAX_WATCH_CHARS = 100
_FINGERPRINT = re.compile(r"^[0-9a-f]{64}$")
#: Kinds that are events of a matter's timeline without being captures of its watch.
EVENT_KINDS = ("notice", "notice-reply")
EXIT_CODES = {Verdict.VERIFIED: 0, Verdict.VERIFIED_OFFLINE: 0, Verdict.FAILED: 1, Verdict.UNUSABLE: 2,
              Verdict.CANNOT_JUDGE: 3}


@dataclass(frozen=True)
class TimelineReport:
    links: tuple[Link, ...]
    checks: tuple[TimelineCheck, ...]
    #: Each watch's chain, first capture first, as indexes into ``links``.
    chains: tuple[tuple[int, ...], ...] = ()
    ignored: tuple[str, ...] = ()
    unusable_reason: str | None = None

    @property
    def verdict(self) -> Verdict:
        if self.unusable_reason is not None:
            return Verdict.UNUSABLE
        verdicts = {link.report.verdict for link in self.links}
        if Verdict.FAILED in verdicts or any(c.status is Status.FAIL for c in self.checks):
            return Verdict.FAILED
        if Verdict.UNUSABLE in verdicts:
            return Verdict.UNUSABLE
        if Verdict.CANNOT_JUDGE in verdicts:
            return Verdict.CANNOT_JUDGE
        if any(c.status is Status.SKIP for c in self.checks):
            return Verdict.FAILED  # a timeline is verified only when both checks could run
        return Verdict.VERIFIED_OFFLINE if Verdict.VERIFIED_OFFLINE in verdicts else Verdict.VERIFIED

    @property
    def verified(self) -> bool:
        return self.verdict in (Verdict.VERIFIED, Verdict.VERIFIED_OFFLINE)

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.verdict]

    def to_json(self) -> dict[str, Any]:
        return {"verified": self.verified, "verdict": self.verdict.value, "verdict_zh": VERDICT_ZH[self.verdict.value],
                "packages": [{"file": link.file, **link.report.to_json()} for link in self.links],
                "checks": [check.to_json() for check in self.checks],
                "chains": [[self.links[i].to_json() for i in chain] for chain in self.chains],
                "ignored": list(self.ignored),
                **({"error": self.unusable_reason} if self.unusable_reason else {})}


def verify_timeline(source: Path, trust: Trust, *, chain: ChainSource | ChainSources | None = None,
                    thumbnails: bool = False) -> TimelineReport:
    """Verify every package in ``source`` (a folder or a zip of packages), then TL1 and TL2.
    ``thumbnails`` keeps a small picture of each verified capture for the timeline document.
    Never raises for bad input: unusable input becomes a report with verdict ``unusable``."""
    try:
        with timeline_packages(source) as found:
            links = tuple(_link(name, path, trust, chain, thumbnails) for name, path in found.packages)
            ignored = found.ignored
    except InvalidPackage as exc:
        skipped = tuple(TimelineCheck(i, Status.SKIP, "input unusable", "输入无法检验") for i in TIMELINE_CHECKS)
        return TimelineReport(links=(), checks=skipped, unusable_reason=exc.diagnostics())
    # Notices and replies sit on the timeline by their time; only captures form the watch's chain.
    chained = [i for i, link in enumerate(links) if link.kind not in EVENT_KINDS]
    captures = tuple(links[i] for i in chained)
    chain_check, chains = check_chain(captures)
    order_check = check_order(captures, chains, chain_check)
    return TimelineReport(links=links, checks=(chain_check, order_check),
                          chains=tuple(tuple(chained[i] for i in chain) for chain in chains), ignored=ignored)


def _link(name: str, path: Path, trust: Trust, chain: ChainSource | ChainSources | None,
          thumbnails: bool) -> Link:
    """Verify one package (as ``verify_package`` does) and read its place in the chain."""
    digest = file_sha256(path)
    try:
        package = open_package(path)
    except InvalidPackage as exc:
        return Link(file=name, report=dataclasses.replace(unusable(exc.diagnostics(), trust_used=trust.digests),
                                                          package_sha256=digest))
    report = dataclasses.replace(verify_opened(package, trust, chain=chain), package_sha256=digest)
    data = package.manifest.data
    previous, error = _previous(data.get("previous", None), "previous" in data)
    evidence_id = package.manifest.evidence_id
    if len(evidence_id) > MAX_EVIDENCE_ID_CHARS:  # the manifest does not bound it; every reason names it
        evidence_id = evidence_id[:MAX_EVIDENCE_ID_CHARS - 1] + "…"
    change, change_error = _change(package)
    anchor = report.facts.get("anchor")
    tx = anchor.get("tx_hash") if isinstance(anchor, Mapping) else None
    return Link(file=name, report=report, evidence_id=evidence_id, previous=previous,
                previous_error=error, watch=_watch(data.get("watch")),
                captured_at=_time(package.manifest.capture.get("ended_at")), tsa_time=_tsa_time(report),
                change=change, change_error=change_error, subject=_label(data.get("subject")),
                matter=_label(data.get("matter") or _notice_matter(data)), anchor_tx=_label(tx),
                kind=package.manifest.kind,
                thumbnail_png=_thumbnail(path, report) if thumbnails else None)


def _change(package: Package) -> tuple[ChangeRecord | None, str | None]:
    """The package's change record, read only if it is the file the manifest lists (else the error)."""
    listed = next((a for a in package.manifest.artifacts if a.path == CHANGE_PATH), None)
    if listed is None:
        return None, None
    try:
        data = package.read(CHANGE_PATH, MAX_CHANGE_BYTES)
        if hashlib.sha256(data).hexdigest() != listed.sha256:
            return None, f"{CHANGE_PATH} is not the file its manifest lists"
        return parse_change(data), None
    except KeyError:
        return None, f"{CHANGE_PATH} is listed but missing"
    except InvalidPackage as exc:
        return None, exc.diagnostics()


def _notice_matter(data: Mapping[str, Any]) -> Any:
    """A notice names its matter inside its record."""
    notice = data.get("notice")
    record = notice.get("record") if isinstance(notice, Mapping) else None
    return record.get("matter") if isinstance(record, Mapping) else None


def _label(value: Any) -> str | None:
    return value[:MAX_LABEL_CHARS] if isinstance(value, str) and value else None


def _thumbnail(path: Path, report: Report) -> bytes | None:
    from verifier.report.exhibit import load_exhibit
    from verifier.report.thumbnail import first_screen_thumbnail

    shot = load_exhibit(path, report).screenshot  # shown only when H1 showed it to be the sealed file
    return first_screen_thumbnail(shot) if shot is not None else None


def _previous(value: Any, present: bool) -> tuple[str | None, str | None]:
    if not present:
        return None, None
    if isinstance(value, str) and _FINGERPRINT.match(value):
        return value, None
    return None, "its manifest's previous is not a fingerprint (64 lowercase hex digits)"


def _watch(value: Any) -> str | None:
    if isinstance(value, Mapping):
        value = value.get("id")
    return value[:MAX_WATCH_CHARS] if isinstance(value, str) and value else None


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _tsa_time(report: Report) -> datetime | None:
    """The earliest gen_time among the tokens H4 found valid; None when none was."""
    stamps = report.facts.get("timestamps")
    times = [_time(s.get("gen_time")) for s in stamps if isinstance(s, Mapping)] if isinstance(stamps, list) else []
    valid = [t for t in times if t is not None]
    return min(valid) if valid else None
