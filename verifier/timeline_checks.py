"""TL1 and TL2: the checks over a timeline's packages, once each package has its own report.

1. **TL1, chain intact.** Each capture's manifest names its predecessor's fingerprint in
   ``previous``. Per watch (the manifest's ``watch``, when captures carry one; else all packages
   are one watch), the links must form one chain: exactly one first capture (no ``previous``),
   every ``previous`` names a package given (no gap), no two packages name the same one (no
   fork), and every package is reached from the first (no loop). A fingerprint commits to every
   byte of its manifest, so a package cannot be dropped, swapped or inserted without breaking it.
   A capture's change record must compare it with the capture its manifest names as previous.
2. **TL2, order agrees with the timestamps.** Along the chain, each package's trusted time (the
   earliest valid RFC 3161 gen_time that H4 accepted) strictly increases, and so do the capture
   end times the manifests state. Two packages sealed in one batch share a gen_time: the TSA then
   does not order them, only the chain does, and TL2 warns instead of passing.

Like the per-package checks, these are pure: they judge the ``Link`` records they are given.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from verifier.change_record import ChangeRecord
from verifier.court_time import format_time
from verifier.legal_basis import ART11_2, Citation
from verifier.verdict import Report, Status
from verifier.wording import STATUS_ZH

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
    #: The manifest's kind: notices and replies are events of the timeline, not links of a watch's chain.
    kind: str = "web-capture"
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


def _listing(problems: Sequence[str], separator: str, *, zh: bool = False) -> str:
    """The first MAX_LISTED items joined by ``separator``, then how many more."""
    shown = list(problems[:MAX_LISTED])
    more = len(problems) - MAX_LISTED
    if more > 0:
        shown.append(f"另有 {more} 项" if zh else f"and {more} more")
    return separator.join(shown)


def _short(fingerprint: str) -> str:
    return f"{fingerprint[:16]}…"


def check_chain(links: Sequence[Link]) -> tuple[TimelineCheck, tuple[tuple[int, ...], ...]]:
    """TL1: the ``previous`` links of each watch's packages form one chain. Returns the check and,
    when it passes, each chain's package indexes in order."""
    broken = [link.file for link in links if link.report.unusable_reason is not None]
    if broken:
        return TimelineCheck("TL1", Status.SKIP,
                             f"the chain cannot be followed through unusable packages: {_listing(broken, ', ')}",
                             f"无法经由不可检验的证据包追踪取证链：{_listing(broken, '、', zh=True)}"), ()
    groups: dict[str | None, list[int]] = defaultdict(list)
    for index, link in enumerate(links):
        groups[link.watch].append(index)
    standalone = _standalone(links, groups)
    if standalone:
        groups[None] = [i for i in groups[None] if i not in standalone]
        if not groups[None]:
            del groups[None]
    everywhere = {link.fingerprint: link for link in links}
    problems: list[tuple[str, str]] = []
    chains = []
    for watch, members in sorted(groups.items(), key=lambda item: item[0] or ""):
        chain = _one_chain(links, members, watch, everywhere, problems)
        if chain is not None:
            chains.append(chain)
    if problems:
        return TimelineCheck("TL1", Status.FAIL, _listing([en for en, _ in problems], "; "),
                             _listing([zh for _, zh in problems], "；", zh=True)), ()
    described = [f"{len(chain)} from {links[chain[0]].name} to {links[chain[-1]].name}" for chain in chains]
    described_zh = [f"{len(chain)} 份，自 {links[chain[0]].name} 至 {links[chain[-1]].name}" for chain in chains]
    if not chains:
        return TimelineCheck("TL1", Status.PASS,
                             f"no chain to follow: all {len(standalone)} item(s) stand alone (no watch, no previous)",
                             f"无需追踪的链：全部 {len(standalone)} 份证据均为单独证据（无监控任务、无前一次取证）"), ()
    if len(chains) == 1 and not standalone:
        reason = f"{len(links)} packages form one chain, first to last: {described[0].split(' ', 1)[1]}"
        reason_zh = f"{len(links)} 份证据包构成一条链，无缺口、无分叉：{described_zh[0]}"
    else:
        reason = f"{len(chains)} watches, each one chain without gap or fork: " + "; ".join(described)
        reason_zh = f"{len(chains)} 个监控任务，各自构成一条无缺口、无分叉的链：" + "；".join(described_zh)
    if standalone:
        reason += f"; and {len(standalone)} stand-alone item(s) of no watch, which claim no place in a chain"
        reason_zh += f"；另有 {len(standalone)} 份不属于任何监控任务的单独证据，不主张链中位置"
    return TimelineCheck("TL1", Status.PASS, reason, reason_zh), tuple(chains)


def _standalone(links: Sequence[Link], groups: Mapping[str | None, list[int]]) -> set[int]:
    """Packages of no watch that link to nothing and that nothing links to: a matter's own capture or
    upload filed beside its watches. They claim no place in a chain, so no chain's gap or fork can
    hide in them, and the report names how many there are. A package that does name a previous, or
    is named, is held to the chain rules.
    """
    named = {link.previous for link in links if link.previous}
    return {i for i in groups.get(None, []) if links[i].previous is None and not links[i].previous_error
            and links[i].fingerprint not in named}


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


def check_order(links: Sequence[Link], chains: Sequence[Sequence[int]], chain_check: TimelineCheck) -> TimelineCheck:
    """TL2: along each chain, the trusted (TSA) times and the capture times strictly increase."""
    if not chains and chain_check.status is Status.PASS:
        # Every item stands alone: no chain claims an order, and each item's own times were checked (T1, T2).
        return TimelineCheck("TL2", Status.PASS, "no chain claims an order: every item stands alone, each with its "
                             "own checked times (T1, T2)", "没有主张顺序的链：每份证据均为单独证据，各自的时间已核验（T1、T2）")
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
                             _listing([zh for _, zh in wrong], "；", zh=True))
    if lacking:
        return TimelineCheck("TL2", Status.SKIP, f"no valid trusted timestamp (H4) for {_listing(lacking, ', ')}",
                             f"{_listing(lacking, '、', zh=True)} 没有有效的可信时间戳（H4），无法核对顺序")
    first, last = links[chains[0][0]], links[chains[0][-1]]
    span = (f"TSA times and capture times strictly increase along the chain, from {format_time(first.tsa_time or '')} "
            f"to {format_time(last.tsa_time or '')}")
    span_zh = (f"沿链的可信时间戳时间与取证时间严格递增，自 {format_time(first.tsa_time or '')} "
               f"至 {format_time(last.tsa_time or '')}")
    if same:
        return TimelineCheck("TL2", Status.WARN,
                             f"the TSA time does not order {_listing(same, ', ')} (the same time: one batch or one "
                             "second); only the chain orders them; no time contradicts the chain",
                             f"{_listing(same, '、', zh=True)} 的可信时间戳时间相同（同一批次或同一秒），"
                             "其先后仅由链确定；没有时间与链矛盾")
    if len(chains) > 1:
        span, span_zh = (f"along each of {len(chains)} chains, TSA times and capture times strictly increase",
                         f"在 {len(chains)} 条链上，可信时间戳时间与取证时间均严格递增")
    return TimelineCheck("TL2", Status.PASS, span, span_zh)
