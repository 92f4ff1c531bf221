"""Render a report for an 80-column terminal. Returns rich renderables; printing is the CLI's job.

The verdict comes first and again last; each check takes one or two lines (id, status, finding);
``details`` adds each check's full finding and its legal basis. Lines are measured in terminal
cells, so Chinese (two cells a character) fits as well as English. A finding cut to fit ends in
"…" and never cuts a time in half: ``--details`` shows it whole.

Every line goes through ``display_text`` (rich ``Text`` does not interpret markup, but a terminal
would still obey escape sequences and bidi controls that a package carries in its strings).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from rich.cells import cell_len
from rich.console import Group, RenderableType
from rich.text import Text

from verifier.court_time import format_time
from verifier.legal_basis import legal_basis
from verifier.report.exhibit import STEPS_TITLE, step_lines
from verifier.sanitize import display_text
from verifier.verdict import DOES_NOT_PROVE, CheckResult, Report, Status, Verdict, shown_groups
from verifier.wording import (
    DEVELOPMENT_TITLE,
    DOES_NOT_PROVE_ZH,
    STATUS_ZH,
    TITLES_ZH,
    VERDICT_MEANING,
    VERDICT_ZH,
    development_zh,
    pick,
    shown_name,
)

WIDTH = 80
STATUS_STYLE = {Status.PASS: "bold green", Status.FAIL: "bold red", Status.WARN: "bold yellow",
                Status.SKIP: "dim"}
VERDICT_STYLE = {Verdict.VERIFIED: "bold white on green", Verdict.VERIFIED_OFFLINE: "bold black on yellow",
                 Verdict.FAILED: "bold white on red", Verdict.UNUSABLE: "bold white on red",
                 Verdict.CANNOT_JUDGE: "bold black on bright_white"}
GROUP_ZH = {"source": "来源", "path": "路径", "hash": "哈希", "time": "时间", "notice": "通知", "log": "日志",
            "stream": "直播流"}
FINDINGS_TITLE = {Verdict.VERIFIED_OFFLINE: ("not checked offline", "离线未核对"),
                  Verdict.FAILED: ("what failed and what it means", "未通过的检查及其含义"),
                  Verdict.UNUSABLE: ("why it could not be read", "无法读取的原因"),
                  Verdict.CANNOT_JUDGE: ("trust missing", "缺少的信任配置")}
#: A time as ``format_time`` writes it; a cut never falls inside one.
TIME_SPAN = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} \(北京时间 UTC\+8\) / "
                       r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} UTC")
_CJK = "\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef"
#: Chinese line-breaking rules: no line starts with closing punctuation or ends with opening punctuation.
_OPENING, _CLOSING = "《（「『〔【“‘", "，。；：、）》」』！？〕】”’…"
#: What a line may break between: a whole time (kept on one line), one CJK character with the
#: punctuation that must stay beside it, a word, spaces.
_TOKEN = re.compile(TIME_SPAN.pattern + rf"[{_CLOSING},.:;)]*\s*|[{_OPENING}]*[{_CJK}][{_CLOSING}]*"
                    rf"|[^\s{_CJK}]+[{_CLOSING}]*\s*|\s+")


def _tokens(text: str, limit: int) -> Iterator[str]:
    """Words, single CJK characters and spaces; a word wider than ``limit`` (a hash) is split."""
    for token in _TOKEN.findall(text):
        if cell_len(token) <= limit:
            yield token
            continue
        # Too wide for a line: a time breaks between its words, a long word (a hash) anywhere.
        for word in re.findall(r"\S+\s*|\s+", token):
            piece = ""
            for char in word:
                if cell_len(piece + char) > limit:
                    yield piece
                    piece = ""
                piece += char
            yield piece


def wrap(text: str, width: int, indent: int = 0) -> list[str]:
    """``text`` in lines of at most ``width`` cells; lines after the first are indented by ``indent``."""
    lines: list[str] = []
    line, used = "", 0
    for token in _tokens(display_text(text.replace("\n", " ")), width - indent):
        size = cell_len(token)
        if used + size > width and line.strip():
            lines.append(line.rstrip())
            token = token.lstrip()
            line, used = " " * indent, indent
            size = cell_len(token)
        line += token
        used += size
    if line.strip():
        lines.append(line.rstrip())
    return lines


def clip(text: str, width: int, max_lines: int, indent: int = 0) -> list[str]:
    """At most ``max_lines`` wrapped lines; a cut ends in "…" and never falls inside a time."""
    flat = display_text(text.replace("\n", " "))
    lines = wrap(flat, width, indent)
    if len(lines) <= max_lines:
        return lines
    low, high = 0, len(flat)  # the longest prefix that fits with its "…"
    while low < high:
        middle = (low + high + 1) // 2
        if len(wrap(flat[:middle].rstrip() + "…", width, indent)) <= max_lines:
            low = middle
        else:
            high = middle - 1
    cut = low
    for span in TIME_SPAN.finditer(flat):
        if span.start() < cut < span.end():
            cut = span.start()
    return wrap(flat[:cut].rstrip() + "…", width, indent)


def _text_lines(lines: Iterable[str], style: str = "") -> list[Text]:
    return [Text(line, style=style) for line in lines]


def _bullets(items: Iterable[str], width: int, style: str = "") -> list[Text]:
    out: list[Text] = []
    for item in items:
        out += _text_lines(wrap(f"• {item}", width, 2), style)
    return out


def _labelled(label: str, value: str, width: int, style: str = "") -> list[Text]:
    """``label  value`` on one line when it fits, else the value indented on the next line."""
    if cell_len(label) + 2 + cell_len(display_text(value)) <= width:
        return [Text(display_text(f"{label}  {value}"), style=style)]
    return [Text(display_text(label), style=style), *_text_lines(wrap("  " + value, width, 2), style)]


def _banner(verdict: Verdict, lang: str, width: int) -> list[Text]:
    """The verdict in its colours, then what it means; wrapped to ``width``."""
    name = f" {pick(verdict.value.upper(), VERDICT_ZH[verdict.value], lang)} "
    meaning = pick(*VERDICT_MEANING[verdict.value], lang)
    lines = wrap(f"{name}  {meaning}", width, 2)
    first = lines[0]
    return [Text.assemble((name, VERDICT_STYLE[verdict]), first[len(name):]), *_text_lines(lines[1:])]


def _times(facts: Mapping[str, Any], offline: bool) -> list[tuple[str, str, str]]:
    """(English label, Chinese label, when) for the times a court compares, those the facts hold."""
    found: list[tuple[str, str, str]] = []
    capture = facts.get("capture")
    if isinstance(capture, Mapping) and capture.get("ended_at"):
        found.append(("captured", "取证结束", str(capture["ended_at"])))
    stamps = facts.get("timestamps")
    if isinstance(stamps, list):
        found += [("TSA time", "时间戳", str(s["gen_time"])) for s in stamps
                  if isinstance(s, Mapping) and s.get("gen_time")]
    anchor = facts.get("anchor")
    if isinstance(anchor, Mapping) and anchor.get("block_time"):
        found.append(("block (claim)" if offline else "block", "区块（声明）" if offline else "区块时间",
                      str(anchor["block_time"])))
    return found


def _check_lines(result: CheckResult, lang: str, width: int, details: bool) -> list[Text]:
    status_en, status_zh = result.status.value, STATUS_ZH[result.status.value]
    style = STATUS_STYLE[result.status]
    head = Text.assemble(f"{result.id} ", (f"{status_en:<4}" if lang != "zh" else status_zh, style), " ")
    title = pick(result.spec.title, TITLES_ZH[result.id], lang)
    prefix = cell_len(head.plain)
    en, zh = result.reason, result.reason_zh or result.reason
    if not details:
        if lang == "both":  # English on the first line, Chinese on the second
            first = clip(f"{result.spec.title}: {en}", width - prefix, 1)
            second = clip(f"{TITLES_ZH[result.id]}：{zh}", width - prefix - cell_len(status_zh) - 1, 1)
            return [head + Text(first[0]), Text.assemble(" " * prefix, (status_zh, style), " ", second[0])]
        text = f"{title}：{zh}" if lang == "zh" else f"{title}: {en}"
        lines = clip(" " * prefix + text, width, 2, prefix)
        return [head + Text(lines[0][prefix:]), *_text_lines(lines[1:])]
    out = [head + Text(display_text(title))]
    for finding in ((zh,) if lang == "zh" else (en,) if lang == "en" else (zh, en)):
        out += _text_lines(wrap("    " + finding, width, 4))
    bases = {"zh": (("依据：", "zh"),), "en": (("basis: ", "en"),), "both": (("依据：", "zh"), ("basis: ", "en"))}
    for label, basis_lang in bases[lang]:
        out += _text_lines(wrap(f"    {label}{legal_basis(result.id, basis_lang)}", width, 6), "dim")
    return out


def render_report(report: Report, *, source: str = "", lang: str = "en", details: bool = False,
                  width: int = WIDTH) -> RenderableType:
    """The verdict, what it means, the times, the checks by group, and the verdict again.

    ``lang`` is ``en``, ``zh`` or ``both``; ``details`` adds every check's full finding and legal basis.
    """
    verdict = report.verdict
    parts: list[Text] = _banner(verdict, lang, width)
    if source:
        parts += _labelled(pick("package", "证据包", lang), shown_name(source), width, "dim")
    findings = {"en": report.findings, "zh": report.findings_zh,
                "both": [f for pair in zip(report.findings_zh, report.findings, strict=True) for f in pair]}[lang]
    if verdict is Verdict.VERIFIED_OFFLINE and not details and report.not_checked:
        ids = [i for i, _ in report.not_checked]
        findings = [pick(f"{', '.join(ids)}: the anchor's block and its time are its claims offline; "
                         "check them with --rpc URL (any JSON-RPC node of that chain)",
                         f"{'、'.join(ids)}：离线时锚定区块及其时间仅为锚定记录的声明；"
                         "可用 --rpc URL 连接该链任一节点核对", lang)]
    if findings:
        en_title, zh_title = FINDINGS_TITLE.get(verdict, ("", ""))
        style = "red" if verdict in (Verdict.FAILED, Verdict.UNUSABLE) else "yellow"
        parts += [Text(pick(en_title, zh_title, lang), style=f"bold {style}"), *_bullets(findings, width)]
    if report.unusable_reason is None:
        parts += _labelled(pick("evidence", "证据编号", lang), str(report.evidence_id), width, "dim")
        parts += _labelled(pick("fingerprint", "证据指纹", lang), str(report.fingerprint), width, "dim")
        for en_label, zh_label, when in _times(report.facts, report.offline):
            parts += _labelled(pick(en_label, zh_label, lang), format_time(when), width)
        steps = step_lines(report)
        if steps:
            parts.append(Text(pick(*STEPS_TITLE, lang), style="bold"))
            parts += _text_lines(line for step in steps for line in wrap(step, width, indent=2))
        for group in shown_groups(report.checks):
            parts.append(Text(pick(group.upper(), GROUP_ZH[group], lang), style="bold cyan"))
            for result in report.checks:
                if result.spec.group == group:
                    parts += _check_lines(result, lang, width, details)
        parts += _media(report, lang, width)
        parts += _closing(report, lang, width)
    if not details and report.unusable_reason is None:
        parts += _text_lines(wrap(pick("--details: each check in full, with its legal basis",
                                        "--details：显示每项检查的完整结论及其法律依据", lang), width), "dim")
    parts += _banner(verdict, lang, width)
    return Group(*parts)


def _media(report: Report, lang: str, width: int) -> list[Text]:
    """The embedded media P2 held to the WARC (``facts["media"]``), one line each: type, size, hash, URL."""
    media = report.facts.get("media")
    if not isinstance(media, Mapping) or not media.get("items"):
        return []
    parts = [Text(pick(f"EMBEDDED MEDIA ({media['count']})", f"嵌入媒体（{media['count']}）", lang), style="bold cyan")]
    for item in media["items"]:
        saved = pick(" saved", " 已单独保存", lang) if item.get("saved_as") else ""
        parts += _text_lines(clip(f"{item['media_type']} {item['size']:,} B sha256 {item['sha256'][:16]}…{saved} "
                                  f"{item['url']}", width, 2, 2))
    if media["count"] > len(media["items"]):
        parts += _text_lines(wrap(pick(f"  and {media['count'] - len(media['items'])} more in evidence/media.json",
                                       f"  另有 {media['count'] - len(media['items'])} 项见 evidence/media.json",
                                       lang), width), "dim")
    return parts


def _closing(report: Report, lang: str, width: int) -> list[Text]:
    """Development trust, the trust used, and (verified only) what the package proves and what not."""
    parts: list[Text] = []
    if report.development:
        parts.append(Text(pick(*DEVELOPMENT_TITLE, lang), style="bold yellow"))
        items = {"en": report.development, "zh": [development_zh(d) for d in report.development],
                 "both": [f"{development_zh(d)} / {d}" for d in report.development]}[lang]
        parts += _bullets(items, width, "yellow")
    if report.trust_used:
        parts.append(Text(pick("trust used (SHA-256)", "所用信任配置（SHA-256）", lang), style="dim"))
    for source_name, digest in report.trust_used:
        name = pick(source_name, "内置信任配置", lang) if source_name == "default trust" else shown_name(source_name)
        parts += _labelled(name, digest, width, "dim")
    if report.proves:
        proves = {"en": report.proves, "zh": report.proves_zh, "both": (*report.proves_zh, *report.proves)}[lang]
        not_proved = {"en": DOES_NOT_PROVE, "zh": DOES_NOT_PROVE_ZH, "both": (*DOES_NOT_PROVE_ZH, *DOES_NOT_PROVE)}
        parts += [Text(pick("What this proves", "本报告证明", lang), style="bold green"),
                  *_bullets(proves, width, "green"),
                  Text(pick("What it does not prove", "本报告不证明", lang), style="bold"),
                  *_bullets(not_proved[lang], width, "dim")]
    return parts
