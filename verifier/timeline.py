"""Verify a timeline: a watch's captures, each verified in full, then TL1 and TL2 over the set.

1. Every package runs all checks (``verify_opened``), as ``tiezheng-verify PACKAGE`` would.
2. **TL1, chain intact.** Each capture's manifest names its predecessor's fingerprint in
   ``previous``. Per watch (the manifest's ``watch``, when captures carry one; else all packages
   are one watch), the links must form one chain: exactly one first capture (no ``previous``),
   every ``previous`` names a package given (no gap), no two packages name the same one (no
   fork), and every package is reached from the first (no loop). A fingerprint commits to every
   byte of its manifest, so a package cannot be dropped, swapped or inserted without breaking it.
3. **TL2, order agrees with the timestamps.** Along the chain, each package's trusted time (the
   earliest valid RFC 3161 gen_time that H4 accepted) strictly increases, and so do the capture
   end times the manifests state. Two packages sealed in one batch share a gen_time: the TSA then
   does not order them, only the chain does, and TL2 warns instead of passing.

The result is a ``TimelineReport``; its verdict and exit code follow DESIGN.md §5/§6: a failed
package or a failed TL check makes the timeline ``failed`` (1); otherwise an unusable package
makes it ``unusable`` (2) and missing trust ``cannot judge`` (3); otherwise it is verified (0).
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import re
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from verifier.capture_format import CHANGE_PATH
from verifier.chain_source import ChainSource, ChainSources
from verifier.change_record import MAX_CHANGE_BYTES, ChangeRecord, parse_change
from verifier.court_time import format_time
from verifier.errors import InvalidPackage
from verifier.legal_basis import ART11_2, Citation
from verifier.package import Package, open_package
from verifier.report import Report, Status, Verdict, unusable
from verifier.timeline_input import timeline_packages
from verifier.trust import Trust
from verifier.verify import file_sha256, verify_opened
from verifier.wording import STATUS_ZH, VERDICT_ZH

TIMELINE_CHECKS: Mapping[str, tuple[str, str]] = {
    "TL1": ("capture chain intact", "取证链完整"),
    "TL2": ("order agrees with the timestamps", "先后顺序与可信时间戳一致"),
}
#: The rules TL1 and TL2 serve, cited as ``verifier.legal_basis`` cites the per-package checks. They stay
#: here, beside the checks, because the browser verifier mirrors that table and has no timeline.
TIMELINE_BASES: Mapping[str, tuple[Citation, ...]] = {
    "TL1": (Citation("evidence", "第九十三条第四项：完整地保存、传输、提取，方法可靠",
                     "Art. 93(4): kept, transmitted and extracted completely, by reliable methods"), ART11_2),
    "TL2": (ART11_2, Citation("internet_courts", "第十一条第一款第二项：生成主体和时间是否明确",
                              "Art. 11 para. 1(2): who made the data, and when, is clear")),
}
#: Problems listed in one reason; the count covers the rest.
MAX_LISTED = 10
#: An evidence id as shown (ours are 33 characters).
MAX_EVIDENCE_ID_CHARS = 100
#: A subject, matter or transaction hash as shown.
MAX_LABEL_CHARS = 200
#: A watch id as shown; the manifest's own limits bound it further.
MAX_WATCH_CHARS = 100
_FINGERPRINT = re.compile(r"^[0-9a-f]{64}$")
EXIT_CODES = {Verdict.VERIFIED: 0, Verdict.VERIFIED_OFFLINE: 0, Verdict.FAILED: 1, Verdict.UNUSABLE: 2,
              Verdict.CANNOT_JUDGE: 3}


@dataclass(frozen=True)
class TimelineCheck:
    id: str
    status: Status
    reason: str
    reason_zh: str

    def to_json(self) -> dict[str, str]:
        title, title_zh = TIMELINE_CHECKS[self.id]
        return {"id": self.id, "group": "timeline", "title": title, "title_zh": title_zh,
                "status": self.status.value, "status_zh": STATUS_ZH[self.status.value],
                "reason": self.reason, "reason_zh": self.reason_zh,
                "basis": timeline_basis(self.id, "en"), "basis_zh": timeline_basis(self.id, "zh")}


def timeline_basis(check_id: str, lang: str) -> str:
    """The legal basis of TL1 or TL2 in ``lang`` (``en`` or ``zh``)."""
    return ("；" if lang == "zh" else "; ").join(c.text(lang) for c in TIMELINE_BASES[check_id])


@dataclass(frozen=True)
class Link:
    """One package of the timeline: its report and what places it in the chain."""

    file: str
    report: Report
    evidence_id: str | None = None
    previous: str | None = None
    #: Why ``previous`` cannot be read, when the manifest holds something that is not a fingerprint.
    previous_error: str | None = None
    watch: str | None = None
    captured_at: datetime | None = None
    tsa_time: datetime | None = None
    #: The package's ``evidence/change.json`` (a watch's capture after the first), when it has one.
    change: ChangeRecord | None = None
    #: Why the change record cannot be read (damaged, not the sealed file, malformed).
    change_error: str | None = None
    subject: str | None = None
    matter: str | None = None
    anchor_tx: str | None = None
    #: The first screen, small, for the timeline document (only when asked for, with Pillow).
    thumbnail_png: bytes | None = field(default=None, repr=False)

    @property
    def fingerprint(self) -> str | None:
        return self.report.fingerprint

    @property
    def name(self) -> str:
        return self.evidence_id or self.file

    def to_json(self) -> dict[str, Any]:
        return {"file": self.file, "evidence_id": self.evidence_id, "fingerprint": self.fingerprint,
                "previous": self.previous, "watch": self.watch, "subject": self.subject, "matter": self.matter,
                "captured_at": self.captured_at.isoformat() if self.captured_at else None,
                "tsa_time": self.tsa_time.isoformat() if self.tsa_time else None, "anchor_tx": self.anchor_tx,
                "change": ({"classification": self.change.classification, "summary": self.change.summary}
                           if self.change else None),
                **({"change_error": self.change_error} if self.change_error else {})}


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
                    now: datetime | None = None, thumbnails: bool = False) -> TimelineReport:
    """Verify every package in ``source`` (a folder or a zip of packages), then TL1 and TL2.
    ``thumbnails`` keeps a small picture of each verified capture for the timeline document.
    Never raises for bad input: unusable input becomes a report with verdict ``unusable``."""
    try:
        with timeline_packages(source) as found:
            links = tuple(_link(name, path, trust, chain, now, thumbnails) for name, path in found.packages)
            ignored = found.ignored
    except InvalidPackage as exc:
        skipped = tuple(TimelineCheck(i, Status.SKIP, "input unusable", "输入无法检验") for i in TIMELINE_CHECKS)
        return TimelineReport(links=(), checks=skipped, unusable_reason=exc.diagnostics())
    chain_check, chains = check_chain(links)
    return TimelineReport(links=links, checks=(chain_check, check_order(links, chains)), chains=chains,
                          ignored=ignored)


def _link(name: str, path: Path, trust: Trust, chain: ChainSource | ChainSources | None,
          now: datetime | None, thumbnails: bool) -> Link:
    """Verify one package (as ``verify_package`` does) and read its place in the chain."""
    digest = file_sha256(path)
    try:
        package = open_package(path)
    except InvalidPackage as exc:
        return Link(file=name, report=dataclasses.replace(unusable(exc.diagnostics(), trust_used=trust.digests),
                                                          package_sha256=digest))
    report = dataclasses.replace(verify_opened(package, trust, chain=chain, now=now), package_sha256=digest)
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
                matter=_label(data.get("matter")), anchor_tx=_label(tx),
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


def _label(value: Any) -> str | None:
    return value[:MAX_LABEL_CHARS] if isinstance(value, str) and value else None


def _thumbnail(path: Path, report: Report) -> bytes | None:
    from verifier.exhibit import load_exhibit
    from verifier.thumbnail import first_screen_thumbnail

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


def _listing(problems: Sequence[str], separator: str) -> str:
    shown = list(problems[:MAX_LISTED])
    if len(problems) > MAX_LISTED:
        shown.append(f"+{len(problems) - MAX_LISTED}")
    return separator.join(shown)


def _short(fingerprint: str) -> str:
    return f"{fingerprint[:16]}…"


def check_chain(links: Sequence[Link]) -> tuple[TimelineCheck, tuple[tuple[int, ...], ...]]:
    """TL1: the ``previous`` links of each watch's packages form one chain. Returns the check and,
    when it passes, each chain's package indexes in order."""
    broken = [link.file for link in links if link.report.unusable_reason is not None]
    if broken:
        names = _listing(broken, ", ")
        return TimelineCheck("TL1", Status.SKIP, f"the chain cannot be followed through unusable packages: {names}",
                             f"无法经由不可检验的证据包追踪取证链：{names}"), ()
    groups: dict[str | None, list[int]] = defaultdict(list)
    for index, link in enumerate(links):
        groups[link.watch].append(index)
    everywhere = {link.fingerprint: link for link in links}
    problems: list[tuple[str, str]] = []
    chains = []
    for watch, members in sorted(groups.items(), key=lambda item: item[0] or ""):
        chain = _one_chain(links, members, watch, everywhere, problems)
        if chain is not None:
            chains.append(chain)
    if problems:
        return TimelineCheck("TL1", Status.FAIL, _listing([en for en, _ in problems], "; "),
                             _listing([zh for _, zh in problems], "；")), ()
    described = [f"{len(chain)} from {links[chain[0]].name} to {links[chain[-1]].name}" for chain in chains]
    described_zh = [f"{len(chain)} 份，自 {links[chain[0]].name} 至 {links[chain[-1]].name}" for chain in chains]
    if len(chains) == 1:
        reason = f"{len(links)} packages form one chain, first to last: {described[0].split(' ', 1)[1]}"
        reason_zh = f"{len(links)} 份证据包构成一条链，无缺口、无分叉：{described_zh[0]}"
    else:
        reason = f"{len(chains)} watches, each one chain without gap or fork: " + "; ".join(described)
        reason_zh = f"{len(chains)} 个监控任务，各自构成一条无缺口、无分叉的链：" + "；".join(described_zh)
    return TimelineCheck("TL1", Status.PASS, reason, reason_zh), tuple(chains)


def _one_chain(links: Sequence[Link], members: list[int], watch: str | None, everywhere: Mapping[str | None, Link],
               problems: list[tuple[str, str]]) -> tuple[int, ...] | None:
    """One watch's chain in order, or None after adding what breaks it to ``problems``."""
    where, where_zh = (f"watch {watch}: ", f"监控任务 {watch}：") if watch else ("", "")
    start = len(problems)

    def problem(en: str, zh: str) -> None:
        problems.append((where + en, where_zh + zh))

    by_fingerprint: dict[str, int] = {}
    for i in members:
        fingerprint = links[i].fingerprint or ""
        if fingerprint in by_fingerprint:
            problem(f"{links[i].file} and {links[by_fingerprint[fingerprint]].file} are the same package",
                    f"{links[i].file} 与 {links[by_fingerprint[fingerprint]].file} 为同一证据包")
        by_fingerprint[fingerprint] = i
    for i in members:
        if links[i].previous_error:
            problem(f"{links[i].name}: {links[i].previous_error}", f"{links[i].name}：清单中的 previous 不是证据指纹")
        _check_change_record(links[i], problem)
    firsts = [i for i in members if links[i].previous is None and not links[i].previous_error]
    if not firsts:
        problem("no first capture: every package names a previous one (the first is missing, or the links loop)",
                "没有首次取证：每份证据包都指向前一份（首份缺失，或链接成环）")
    elif len(firsts) > 1:
        names = ", ".join(links[i].name for i in firsts[:MAX_LISTED])
        problem(f"{len(firsts)} first captures (no previous): {names}; one chain has one first capture",
                f"有 {len(firsts)} 份首次取证（无 previous）：{names}；一条链只有一个起点")
    children: dict[str, list[int]] = defaultdict(list)
    for i in members:
        previous = links[i].previous
        if previous is None:
            continue
        children[previous].append(i)
        if previous in by_fingerprint:
            continue
        other = everywhere.get(previous)
        if other is not None:
            problem(f"{links[i].name} names {other.name} of another watch as its previous capture",
                    f"{links[i].name} 指向另一监控任务的 {other.name} 为前一次取证")
        else:
            problem(f"gap: {links[i].name} names previous capture {_short(previous)}, which is not among the "
                    "packages given", f"缺口：{links[i].name} 指向的前一次取证 {_short(previous)} 不在所给证据包中")
    for previous, after in children.items():
        if len(after) > 1 and previous in by_fingerprint:
            names = ", ".join(links[i].name for i in after)
            problem(f"fork: {names} all name {links[by_fingerprint[previous]].name} as their previous capture",
                    f"分叉：{names} 均指向 {links[by_fingerprint[previous]].name} 为前一次取证")
    if len(problems) > start:
        return None
    order = [firsts[0]]
    while (following := children.get(links[order[-1]].fingerprint or "")) and len(order) <= len(members):
        order.append(following[0])
    if len(order) != len(members):
        problem(f"{len(members) - len(order)} packages are not reached from the first capture (their links loop)",
                f"有 {len(members) - len(order)} 份证据包无法从首次取证到达（其链接成环）")
        return None
    return tuple(order)


def _check_change_record(link: Link, problem: Callable[[str, str], None]) -> None:
    """A capture's change record must compare it with the capture its manifest names as previous."""
    if link.change_error:
        problem(f"{link.name}: its change record cannot be read: {link.change_error}",
                f"{link.name}：其变化记录无法读取：{link.change_error}")
    elif link.change is not None and link.change.previous_fingerprint.hex() != link.previous:
        compared = _short(link.change.previous_fingerprint.hex())
        named = _short(link.previous) if link.previous else "none"
        problem(f"{link.name}: its change record compares it with {compared}, but its manifest names {named} "
                "as the previous capture",
                f"{link.name}：其变化记录所比对的是 {compared}，而清单所列前一次取证为 {named}")


def check_order(links: Sequence[Link], chains: Sequence[Sequence[int]]) -> TimelineCheck:
    """TL2: along each chain, the trusted (TSA) times and the capture times strictly increase."""
    if not chains:
        return TimelineCheck("TL2", Status.SKIP, "there is no single order to check: TL1 did not pass",
                             "TL1 未通过，没有可核对的唯一顺序")
    wrong: list[tuple[str, str]] = []
    same: list[str] = []
    lacking: list[str] = []
    for chain in chains:
        for earlier, later in itertools.pairwise(chain):
            a, b = links[earlier], links[later]
            if a.tsa_time is None or b.tsa_time is None:
                lacking.extend(link.name for link in (a, b) if link.tsa_time is None and link.name not in lacking)
            elif b.tsa_time < a.tsa_time:
                wrong.append((f"{b.name} follows {a.name} in the chain but its TSA time {format_time(b.tsa_time)} is "
                              f"earlier than {format_time(a.tsa_time)}",
                              f"{b.name} 在链中位于 {a.name} 之后，但其可信时间戳时间 {format_time(b.tsa_time)} "
                              f"早于 {format_time(a.tsa_time)}"))
            elif b.tsa_time == a.tsa_time:
                same.append(f"{a.name} / {b.name}")
            if a.captured_at and b.captured_at and b.captured_at <= a.captured_at:
                wrong.append((f"{b.name} follows {a.name} in the chain but states a capture time "
                              f"{format_time(b.captured_at)} not after {format_time(a.captured_at)}",
                              f"{b.name} 在链中位于 {a.name} 之后，但其所述取证时间 {format_time(b.captured_at)} "
                              f"不晚于 {format_time(a.captured_at)}"))
    if wrong:
        return TimelineCheck("TL2", Status.FAIL, _listing([en for en, _ in wrong], "; "),
                             _listing([zh for _, zh in wrong], "；"))
    if lacking:
        names = _listing(lacking, ", ")
        return TimelineCheck("TL2", Status.SKIP, f"no valid trusted timestamp (H4) for {names}",
                             f"{names} 没有有效的可信时间戳（H4），无法核对顺序")
    first, last = links[chains[0][0]], links[chains[0][-1]]
    span = (f"TSA times and capture times strictly increase along the chain, from {format_time(first.tsa_time or '')} "
            f"to {format_time(last.tsa_time or '')}")
    span_zh = (f"沿链的可信时间戳时间与取证时间严格递增，自 {format_time(first.tsa_time or '')} "
               f"至 {format_time(last.tsa_time or '')}")
    if same:
        names = _listing(same, ", ")
        return TimelineCheck("TL2", Status.WARN,
                             f"the TSA time does not order {names} (the same time: one batch or one second); only "
                             "the chain orders them; no time contradicts the chain",
                             f"{names} 的可信时间戳时间相同（同一批次或同一秒），其先后仅由链确定；没有时间与链矛盾")
    if len(chains) > 1:
        span, span_zh = (f"along each of {len(chains)} chains, TSA times and capture times strictly increase",
                         f"在 {len(chains)} 条链上，可信时间戳时间与取证时间均严格递增")
    return TimelineCheck("TL2", Status.PASS, span, span_zh)
