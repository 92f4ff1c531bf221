"""Render a report as one self-contained, bilingual (English / 中文) HTML page a court can file.

The page has no scripts and no external assets, so it opens the same way offline and years later.
Every value that reaches the page goes through ``html.escape``: reasons and facts carry text from the
package, which an adversary may have written. The bilingual labels and the timeline live here and
are reused by the PDF certificate, so both documents say the same thing in the same words.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from verifier import __version__
from verifier.court_time import format_duration, format_time
from verifier.legal_basis import legal_basis
from verifier.report.certification import certifications
from verifier.report.exhibit import Exhibit, both_times, load_exhibit, target_rows
from verifier.report.html_exhibit import captured_section, certification_section, media_section
from verifier.report.html_text import bilingual, escaped, text
from verifier.verdict import DOES_NOT_PROVE, Report, Status, Verdict, shown_groups
from verifier.wording import (
    DEVELOPMENT_TITLE,
    DOES_NOT_PROVE_ZH,
    STATUS_ZH,
    TITLES_ZH,
    VERDICT_ZH,
    development_zh,
    finding_lines,
    lines,
    shown_name,
)

if TYPE_CHECKING:
    from verifier.verdict import CheckResult

GROUP_LABELS: Mapping[str, tuple[str, str]] = {
    "source": ("Source", "电子数据来源"),
    "path": ("Generation and transmission path", "生成及传输路径"),
    "hash": ("Hash consistency", "哈希值一致性"),
    "time": ("Time", "时间"),
    "notice": ("Notice and reply", "通知与回复"),
    "log": ("Event log", "事件日志"),
    "stream": ("Live stream", "直播流"),
}
STATUS_LABELS: Mapping[Status, tuple[str, str]] = {
    status: ("not checked" if status is Status.SKIP else status.value, STATUS_ZH[status.value]) for status in Status}
VERDICT_LABELS: Mapping[Verdict, tuple[str, str]] = {
    verdict: ("NOT VERIFIED" if verdict is Verdict.FAILED else "INPUT UNUSABLE" if verdict is Verdict.UNUSABLE
              else verdict.value.upper(), VERDICT_ZH[verdict.value]) for verdict in Verdict}
VERDICT_EXPLAINED: Mapping[Verdict, tuple[str, str]] = {
    Verdict.VERIFIED: ("No check failed; the hash checks H1-H4 and the online anchor check H5 pass.",
                       "没有检查项未通过；哈希检查 H1–H4 及在线区块链锚定检查 H5 均通过。"),
    Verdict.VERIFIED_OFFLINE: ("No check failed and H1-H4 pass. Offline, the anchor block and its time are the "
                               "package's claims: that the block is on the canonical chain was not confirmed (see "
                               "H5), and the times rest on the trusted timestamp. Run online (--rpc URL) to settle "
                               "them.",
                               "没有检查项未通过，H1–H4 均通过。离线时，锚定区块及其时间仅为证据包的声明：未确认该区块"
                               "位于主链（见 H5），时间以可信时间戳为准。可在线验证（--rpc URL）予以确认。"),
    Verdict.FAILED: ("A check failed, or a required hash check (H1-H4, or H5 online) did not pass.",
                     "有检查项未通过，或必需的哈希检查（H1–H4，在线时含 H5）未通过。"),
    Verdict.UNUSABLE: ("The input could not be examined at all.", "输入无法检验。"),
    Verdict.CANNOT_JUDGE: ("No check failed, but the trust given lacks the operator key or TSA root this package "
                           "needs, so the verifier cannot decide. The package may be fine.",
                           "没有检查项未通过，但所给信任配置缺少本证据包所需的运营方密钥或时间戳机构根证书，"
                           "验证程序无法判断。证据包本身可能并无问题。"),
}
#: The heading of the findings section for each verdict (a verified package has none).
FINDINGS_TITLES: Mapping[Verdict, tuple[str, str]] = {
    Verdict.VERIFIED_OFFLINE: ("Not checked offline", "离线未检查事项"),
    Verdict.FAILED: ("What failed and what it means", "未通过的检查及其含义"),
    Verdict.UNUSABLE: ("Why the file could not be read", "无法读取的原因"),
    Verdict.CANNOT_JUDGE: ("Trust missing, and how to get it", "缺少的信任及获取方式"),
}
TRUST_USED_TITLE = ("Trust used (SHA-256 of each trust file)", "所用信任配置（各信任文件的 SHA-256）")
#: Keys of manifest ``target`` shown first, in this order; any other key follows.
TARGET_KEYS = ("requested_url", "url", "final_url", "redirects")


@dataclass(frozen=True)
class Event:
    """One point on the timeline. ``offset`` is seconds after capture ended, when both times parse
    (None for the capture end itself)."""

    kind: str  # capture_started | capture_ended | timestamp | block
    label: str
    label_zh: str
    when: str  # in the court format (format_time), escaped for display
    detail: str
    offset: float | None


def fact(report: Report, *keys: str) -> Any:
    """``report.facts[k1][k2]…``, or None when any level is missing or not a mapping."""
    value: Any = report.facts
    for key in keys:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def target_url(report: Report) -> str | None:
    """The target as one line (requested → final, redirects); None for an upload."""
    target = fact(report, "target")
    if not isinstance(target, Mapping) or not target:
        return None
    keys = [k for k in TARGET_KEYS if k in target] + [k for k in target if k not in TARGET_KEYS]
    if len(keys) == 1:
        return text(target[keys[0]])
    return "; ".join(f"{k}: {text(target[k])}" for k in keys)


def timestamps(report: Report) -> list[Mapping[str, Any]]:
    value = fact(report, "timestamps")
    return [t for t in value if isinstance(t, Mapping)] if isinstance(value, list) else []


def _parse(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def timeline(report: Report) -> list[Event]:
    """Capture started → ended → each TSA time → block time, as the package states them."""
    events = [("capture_started", "Capture started", "取证开始", fact(report, "capture", "started_at"), ""),
              ("capture_ended", "Capture ended", "取证结束", fact(report, "capture", "ended_at"), "")]
    for stamp in timestamps(report):
        events.append(("timestamp", "Trusted timestamp (TSA)", "可信时间戳", stamp.get("gen_time"),
                       f"{text(stamp.get('trusted_as'))} ({text(stamp.get('tsa'))})"))
    block = fact(report, "anchor", "block_time")
    if block is not None:
        where = f"{text(fact(report, 'anchor', 'chain'))}, block {text(fact(report, 'anchor', 'block_number'))}"
        events.append(("block", "Block time (anchor)", "区块时间（锚定）", block, where))
    ended = _parse(fact(report, "capture", "ended_at"))
    # Offsets count from capture end, the start of the "pre-chain" gap that T1/T2 examine.
    return [Event(kind, label, label_zh, both_times(when), detail,
                  (moment - ended).total_seconds()
                  if kind != "capture_ended" and ended and (moment := _parse(when)) else None)
            for kind, label, label_zh, when, detail in events]


def offset_text(seconds: float | None, lang: str = "both") -> str:
    """How long after capture ended, in words: ``取证结束后 0.7 秒 / 0.7 s after capture ended``."""
    if seconds is None:
        return ""
    zh = (f"取证结束后 {format_duration(seconds, 'zh')}" if seconds >= 0
          else f"取证结束前 {format_duration(-seconds, 'zh')}")
    en = (f"{format_duration(seconds)} after capture ended" if seconds >= 0
          else f"{format_duration(-seconds)} before capture ended")
    return " / ".join(lines(en, zh, lang))


def scope_pairs(report: Report) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(English, Chinese) of what the report proves and what it does not; nothing proved unless verified."""
    return (list(zip(report.proves, report.proves_zh, strict=True)),
            list(zip(DOES_NOT_PROVE, DOES_NOT_PROVE_ZH, strict=True)))


def finding_pairs(report: Report) -> list[tuple[str, str]]:
    """(English, Chinese) of each point of the findings section (``findings_zh`` is point for point)."""
    english, chinese = report.findings, report.findings_zh
    return list(zip(english, chinese, strict=True)) if len(english) == len(chinese) else [(e, "") for e in english]


def development_pairs(report: Report) -> list[tuple[str, str]]:
    return [(item, development_zh(item)) for item in report.development]


def _lines(parts: Iterable[str]) -> str:
    """Lines of text, each escaped on its own; a Chinese line is marked as such for fonts and readers."""
    return "<br>".join(f'<span lang="zh-CN">{escaped(p)}</span>' if _has_cjk(p) else escaped(p) for p in parts)


def _has_cjk(value: str) -> bool:
    return any("\u4e00" <= c <= "\u9fff" for c in value)


def _bi_lines(english: str, chinese: str) -> str:
    """A sentence and its translation on separate lines: inline, two sentences read as one."""
    return f'{html.escape(english)}<br><span lang="zh-CN" class="zh zl">{html.escape(chinese)}</span>'


STYLE = """
:root{--ink:#1f2328;--muted:#59636e;--line:#d1d9e0;--bg:#f6f8fa;--card:#fff;--pass:#1a7f37;--fail:#cf222e;
--warn:#9a6700;--skip:#59636e}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);font:15px/1.55 system-ui,-apple-system,"Segoe UI",Roboto,
"PingFang SC","Hiragino Sans GB","Microsoft YaHei","Noto Sans CJK SC","WenQuanYi Micro Hei",sans-serif}
main{max-width:1040px;margin:0 auto;padding:24px 16px 48px}
h1{font-size:1.55rem;margin:0 0 4px;line-height:1.25} h2{font-size:1.1rem;margin:0 0 12px}
.zh{color:var(--muted);font-weight:inherit;margin-left:.35em} .zl{margin-left:0}
h1 .zh,h2 .zh,.banner .zh{color:inherit;opacity:.85}
.sub{color:var(--muted);font-size:.9rem;margin:0 0 16px;overflow-wrap:anywhere}
section,.banner{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:16px 18px;
margin:0 0 16px}
.banner{color:#fff;border:0}
.banner strong{display:block;font-size:1.45rem;letter-spacing:.02em}
.banner p{margin:6px 0 0}
.verified{background:var(--pass)} .offline{background:#bf8700;color:#1f2328}
.failed,.unusable{background:var(--fail)} .cannot-judge{background:#57606a}
.findings{border-color:#d4a72c} .findings ul{margin:0;padding-left:1.2em}
.devtrust{background:#fff8c5;border-color:#d4a72c}
.devtrust ul{margin:0;padding-left:1.2em}
dl{display:grid;grid-template-columns:minmax(150px,max-content) 1fr;gap:6px 18px;margin:0}
dt{color:var(--muted);font-size:.9rem} dd{margin:0;overflow-wrap:anywhere}
.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.88em;word-break:break-all}
ol.timeline{list-style:none;margin:0;padding:0 0 0 18px;border-left:3px solid var(--line)}
ol.timeline li{position:relative;margin:0 0 12px;padding-left:8px}
ol.timeline li::before{content:"";position:absolute;left:-27px;top:.45em;width:13px;height:13px;border-radius:50%;
background:#0969da;border:2px solid var(--card)}
.when{font-weight:600} .offset{color:var(--muted)}
.detail{color:var(--muted);font-size:.9rem}
table{width:100%;border-collapse:collapse;table-layout:fixed}
th,td{text-align:left;vertical-align:top;padding:8px 8px;border-top:1px solid var(--line);overflow-wrap:anywhere}
th{font-size:.85rem;color:var(--muted);font-weight:600}
col.c-id{width:19%} col.c-st{width:13%} col.c-basis{width:27%}
tr.group td{background:var(--bg);font-weight:700;padding-top:10px}
.basis{color:var(--muted);font-size:.9rem}
.badge{display:inline-block;padding:2px 9px;border-radius:8px;font-size:.8rem;font-weight:700;color:#fff;
line-height:1.35;text-align:center}
.badge .zh{display:block;color:inherit;opacity:1;margin:0;font-weight:400}
.s-pass{background:var(--pass)} .s-fail{background:var(--fail)} .s-warn{background:var(--warn)}
.s-skip{background:#818b98}
ul.scope{margin:0 0 8px;padding-left:1.2em} ul.scope li{margin:0 0 6px}
footer{color:var(--muted);font-size:.85rem;overflow-wrap:anywhere}
.shot{margin:12px 0 8px} .fold{overflow:hidden;border:1px solid var(--line);max-width:100%}
.fold img,img.full{display:block;width:100%;height:auto} img.full{border:1px solid var(--line);margin-top:8px}
figcaption,summary{color:var(--muted);font-size:.9rem} details{margin-top:8px}
.cert h3{font-size:1rem;margin:14px 0 4px} .cert p{margin:0 0 6px;overflow-wrap:anywhere}
dl.sign dd{border-bottom:1px solid var(--muted);min-height:2.2em}
@media (max-width:700px){
 main{padding:12px 10px 32px} h1{font-size:1.25rem} .banner strong{font-size:1.2rem}
 dl{grid-template-columns:1fr;gap:0} dd{margin-bottom:8px}
 table,tbody,tr,td{display:block;width:100%} thead,colgroup{display:none}
 tr.check{border-top:1px solid var(--line);padding:8px 0} tr.check td{border:0;padding:2px 0}
 td[data-label]::before{content:attr(data-label);display:block;color:var(--muted);font-size:.78rem;font-weight:600}
}
@media print{body{background:#fff} section,.banner{break-inside:avoid} tr{break-inside:avoid}}
"""


def _facts(report: Report, source: str) -> str:
    anchor = fact(report, "anchor")
    rows: list[tuple[str, str, str, bool]] = [
        ("Evidence ID", "证据编号", text(report.evidence_id), True),
        ("Evidence fingerprint (SHA-256)", "证据指纹", text(report.fingerprint), True),
        ("Package file", "证据包文件", source, True),
        ("Package file SHA-256", "证据包文件 SHA-256", text(report.package_sha256), True),
        ("Kind", "类型", text(fact(report, "kind")), False),
        *([] if target_rows(report) else  # a capture's target has its own table
          [("Target URL", "目标网址", target_url(report) or "none: uploaded files / 无：上传文件", True)]),
        ("Operator", "运营方", text(fact(report, "operator", "name")), False),
        ("Requester", "申请人", " · ".join(text(fact(report, "requester", k)) for k in ("tenant", "identity")),
         False),
        ("Batch root", "批次根哈希", text(fact(report, "batch", "root")), True),
    ]
    if isinstance(anchor, Mapping):
        rows += [("Chain", "区块链", f"{text(anchor.get('chain'))} (chain id {text(anchor.get('chain_id'))})", False),
                 ("Block", "区块", f"{text(anchor.get('block_number'))} · {text(anchor.get('block_hash'))}", True),
                 ("Transaction", "交易哈希", text(anchor.get("tx_hash")), True)]
    rows.append(("Verification mode", "验证方式",
                 "offline / 离线" if report.offline else "online / 在线", False))
    items = "".join(f'<dt>{bilingual(en, zh)}</dt><dd{" class=mono" if mono else ""}>{escaped(value)}</dd>'
                    for en, zh, value, mono in rows)
    return f"<section><h2>{bilingual('Evidence', '证据信息')}</h2><dl>{items}</dl></section>"


def _timeline(report: Report, lang: str) -> str:
    items = []
    for event in timeline(report):
        detail = f'<div class="detail">{escaped(event.detail)}</div>' if event.detail else ""
        offset = (f'<div class="offset">{escaped(offset_text(event.offset, lang))}</div>'
                  if event.offset is not None else "")
        items.append(f"<li><div>{bilingual(event.label, event.label_zh)}</div>"
                     f'<div><span class="when mono">{html.escape(event.when)}</span>{offset}</div>{detail}</li>')
    gap = fact(report, "prechain_gap_seconds")
    until = fact(report, "prechain_gap_until") or "block time"
    shown = (" / ".join(lines(format_duration(gap), format_duration(gap, "zh"), lang))
             if isinstance(gap, int | float) else gap)
    note = (f'<p class="detail">{bilingual(f"Pre-chain gap (capture ended → {until}):", "上链前间隔：")} '
            f"{escaped(shown)}</p>")
    return (f"<section><h2>{bilingual('Timeline', '时间线')}</h2>"
            f'<ol class="timeline">{"".join(items)}</ol>{note}</section>')


def _checks(report: Report, lang: str) -> str:
    rows = []
    for group in shown_groups(report.checks):
        en, zh = GROUP_LABELS[group]
        rows.append(f'<tr class="group"><td colspan="4">{bilingual(en, zh)}</td></tr>')
        for result in (r for r in report.checks if r.spec.group == group):
            status_en, status_zh = STATUS_LABELS[result.status]
            rows.append(
                f'<tr class="check" id="check-{escaped(result.id)}">'
                f'<td><strong>{escaped(result.id)}</strong> '
                f"{_bi_lines(result.spec.title, TITLES_ZH[result.id])}</td>"
                f'<td data-label="Status 结果"><span class="badge s-{result.status.value}">'
                f"{bilingual(status_en, status_zh)}</span></td>"
                f'<td data-label="Finding 检查发现">{_lines(finding_lines(result, lang))}</td>'
                f'<td data-label="Legal basis 法律依据" class="basis">{_basis(result, lang)}</td></tr>')
    head = "".join(f"<th>{bilingual(en, zh)}</th>" for en, zh in
                   (("Check", "检查项"), ("Status", "结果"), ("Finding", "检查发现"), ("Legal basis", "法律依据")))
    return (f"<section><h2>{bilingual('Checks', '检查项')}</h2><table>"
            '<colgroup><col class="c-id"><col class="c-st"><col><col class="c-basis"></colgroup>'
            f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></section>")


def _basis(result: CheckResult, lang: str) -> str:
    return _lines(legal_basis(result.id, part) for part in (("zh", "en") if lang == "both" else (lang,)))


def _scope_list(pairs: Iterable[tuple[str, str]], lang: str) -> str:
    items = "".join(f"<li>{_lines(lines(en, zh, lang))}</li>" for en, zh in pairs)
    return f'<ul class="scope">{items}</ul>'


def _trust_used(report: Report) -> str:
    # The file's name only: the folders are of the verifier's machine, not of the evidence.
    rows = "".join(f"<dt>{escaped(shown_name(source))}</dt><dd class=mono>{escaped(digest)}</dd>"
                   for source, digest in report.trust_used)
    return f"<section><h2>{bilingual(*TRUST_USED_TITLE)}</h2><dl>{rows or '<dd>—</dd>'}</dl></section>"


_FOOTER = ("<footer><p>"
           + bilingual("Anyone can repeat this verification with the same package and trust file:",
                 "任何人均可使用同一证据包和信任文件重复验证：")
           + ' <span class="mono">tiezheng-verify PACKAGE --trust FILE</span>. '
           + bilingual("The same findings in machine-readable form:", "机器可读的同一结果：")
           + ' <span class="mono">--json</span>.</p></footer>')


def render_html(report: Report, *, source: str, generated_at: datetime | None = None,
                package: Path | str | None = None, lang: str = "both") -> str:
    """The report as a complete HTML document (a ``str``); raises nothing for any report.

    ``package`` is the package file the report is of: its screenshot and file list go into the page.
    ``lang`` (``zh``, ``en`` or ``both``) is the language of findings, reasons and legal bases; the
    labels are always bilingual."""
    verdict = report.verdict
    when = format_time(generated_at or datetime.now(UTC))
    source = shown_name(source)  # never the folders of the verifier's machine
    exhibit = load_exhibit(package, report) if package is not None else Exhibit()
    css_class = {Verdict.VERIFIED: "verified", Verdict.VERIFIED_OFFLINE: "offline",
                 Verdict.FAILED: "failed", Verdict.UNUSABLE: "unusable", Verdict.CANNOT_JUDGE: "cannot-judge"}[verdict]
    explained_en, explained_zh = VERDICT_EXPLAINED[verdict]
    detail = ""
    if report.unusable_reason:
        detail = f"<p>{escaped(report.unusable_reason)}</p>"
    elif report.failed_ids:
        detail = f"<p>{bilingual('Failed checks:', '未通过的检查项：')} {escaped(', '.join(report.failed_ids))}</p>"
    label_en, label_zh = VERDICT_LABELS[verdict]
    parts = [
        f"<header><h1>{bilingual('Electronic evidence verification report', '电子证据验证报告')}</h1>"
        f'<p class="sub">Tiezheng 铁证 · tiezheng-verify {escaped(__version__)} · {bilingual("generated", "生成于")} '
        f"{escaped(when)}</p></header>",
        f'<div class="banner {css_class}" role="status"><strong>{bilingual(label_en, label_zh)}</strong>'
        f"<p>{_bi_lines(explained_en, explained_zh)}</p>{detail}</div>",
    ]
    if report.development:
        items = "".join(f"<li>{_lines(lines(en, zh, lang))}</li>" for en, zh in development_pairs(report))
        intro = _bi_lines("This verification relied on development keys or services:",
                          "本次验证依赖开发环境的密钥或服务：")
        parts.append(f'<section class="devtrust"><h2>{bilingual(*DEVELOPMENT_TITLE)}</h2>'
                     f"<p>{intro}</p><ul>{items}</ul></section>")
    if report.findings:
        items = "".join(f"<li>{_lines(lines(en, zh, lang))}</li>" for en, zh in finding_pairs(report))
        title = bilingual(*FINDINGS_TITLES[verdict])
        parts.append(f'<section class="findings"><h2>{title}</h2><ul>{items}</ul></section>')
    parts += [captured_section(report, exhibit), media_section(exhibit), _facts(report, source),
              _timeline(report, lang), _checks(report, lang),
              _trust_used(report)]
    if report.proves:  # only a verified package proves anything
        proves, does_not = scope_pairs(report)
        parts.append(f"<section><h2>{bilingual('What this proves', '本报告证明')}</h2>{_scope_list(proves, lang)}"
                     f"<h2>{bilingual('What it does not prove', '本报告不证明')}</h2>"
                     f"{_scope_list(does_not, lang)}</section>")
    if report.verified:  # a qualified person can only certify evidence that verified
        english, chinese = certifications(report, exhibit, when=when)
        parts += [certification_section(english), certification_section(chinese)]
    parts.append(_FOOTER)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            # No script, style or image may load from anywhere: the page is data, not an application.
            # Images only as data: URIs (the screenshot, embedded).
            "<meta http-equiv=\"Content-Security-Policy\" "
            "content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">"
            f"<title>{escaped(label_en)} · {escaped(report.evidence_id)} · Tiezheng</title>"
            f"<style>{STYLE}</style></head>"
            f"<body><main>{''.join(parts)}</main></body></html>\n")
