"""The timeline document: a matter's evidence in time order, as one bilingual HTML page and one PDF.

Each line is an event (a capture, a notice delivered, a change, a removal, a reappearance) with its
evidence id, fingerprint, status and anchor transaction, an optional thumbnail, and a link to the
package that proves it. Where content was removed after a notice, the delay is worded
("removed 3 days 4 hours after the notice was delivered" / "通知送达后 3 天 4 小时被删除"), and each
notice's course is summed up by day ("notice delivered → still present on day 16 → removed on day 18"):
the question courts ask of a platform's response (SPC Online Litigation Rules, E-Commerce Law Art. 42).

Every string comes from packages, watches and users, so every string is escaped: HTML with
``html.escape`` over ``display_text`` (hidden characters shown as codes), PDF with
``pdf_fonts.markup``. Links are emitted only for http(s) URLs and plain relative paths; a
thumbnail only when it is a PNG within ``MAX_THUMBNAIL_BYTES`` and ``MAX_THUMBNAIL_PIXELS``.
reportlab and Pillow are imported inside the PDF functions: the base verifier imports without them.
"""

from __future__ import annotations

import base64
import html
import io
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from verifier import __version__
from verifier.court_time import BEIJING, format_duration, format_time
from verifier.errors import InvalidInput
from verifier.sanitize import display_text

KINDS: Mapping[str, tuple[str, str]] = {
    "capture": ("Capture", "取证"),
    "notice": ("Notice delivered", "通知送达"),
    "reply": ("Reply received", "收到回复"),
    "change": ("Change", "内容变化"),
    "removal": ("Removal", "删除（下架）"),
    "reappearance": ("Reappearance", "重新出现"),
}
KIND_COLOURS = {"capture": "#0969da", "notice": "#8250df", "reply": "#1a7f37", "change": "#9a6700",
                "removal": "#cf222e", "reappearance": "#bc4c00"}
#: A thumbnail is a small preview; the package holds the full screenshot.
MAX_THUMBNAIL_BYTES = 512 << 10
MAX_THUMBNAIL_PIXELS = 4_000_000
#: Longest text shown for one field of one event; the packages hold the rest.
MAX_FIELD_CHARS = 400
MAX_LINK_CHARS = 2000
#: A note lists check findings, which name packages: longer than a field, still bounded.
MAX_NOTE_CHARS = 1500
MAX_ENTRIES = 5000
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_RELATIVE_PATH = re.compile(r"^[A-Za-z0-9._\-/]+$")
THUMBNAIL_MM = 32
#: A thumbnail is drawn at most this many times as high as wide (a tall one is scaled down to fit).
MAX_THUMBNAIL_ASPECT = 2.2


@dataclass(frozen=True)
class TimelineEntry:
    """One event of the timeline and the package that proves it."""

    time: datetime
    kind: str
    evidence_id: str
    fingerprint: str | None = None
    #: The package's state as the caller knows it: "sealed", "verified", "HTTP 404", ...
    status: str | None = None
    anchor_tx: str | None = None
    thumbnail_png: bytes | None = None
    #: Where the package is: an http(s) URL or a path relative to the document.
    link: str | None = None
    #: What happened, in one line ("price ¥ 99.00 → ¥ 79.00", "notice to the platform's agent").
    summary: str | None = None
    #: For a capture: whether it found the content there (its change record says so), False when it
    #: found it removed, None when nothing says (a notice, or a capture with no change record).
    content_present: bool | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InvalidInput(f"timeline entry kind {self.kind!r} is not one of {', '.join(KINDS)}")


@dataclass(frozen=True)
class RemovalDelay:
    """How long after a notice was delivered the content was found removed."""

    notice: TimelineEntry
    removal: TimelineEntry

    @property
    def delay(self) -> timedelta:
        return _utc(self.removal.time) - _utc(self.notice.time)

    @property
    def words(self) -> tuple[str, str]:
        """``("removed 3 days 4 hours after the notice was delivered", "通知送达后 3 天 4 小时被删除")``."""
        return (f"removed {format_duration(self.delay)} after the notice was delivered",
                f"通知送达后 {format_duration(self.delay, 'zh')}被删除")


def _day_after(notice: TimelineEntry, entry: TimelineEntry) -> int:
    """Which day after the notice's ``entry`` falls on: dates in China Standard Time, the day of
    delivery being day 0 (a period in days starts the day after, Civil Code Art. 201)."""
    return (_utc(entry.time).astimezone(BEIJING).date()
            - _utc(notice.time).astimezone(BEIJING).date()).days


#: Days of presence listed in one course; the events table shows every capture.
MAX_COURSE_DAYS = 8


@dataclass(frozen=True)
class NoticeCourse:
    """What became of the content after one notice: the captures that still found it, then the first
    that found it removed (if any did), each by its day after delivery."""

    notice: TimelineEntry
    present: tuple[TimelineEntry, ...]
    removal: TimelineEntry | None

    def day(self, entry: TimelineEntry) -> int:
        return _day_after(self.notice, entry)

    @property
    def words(self) -> tuple[str, str]:
        """``("notice delivered → still present on day 16 → removed on day 18",
        "通知送达 → 第 16 天仍然存在 → 第 18 天被删除")``."""
        days = [str(self.day(e)) for e in self.present]
        if len(days) > MAX_COURSE_DAYS:  # the first ones and the last, the events table has them all
            days = [*days[:MAX_COURSE_DAYS - 2], "…", days[-1]]
        en, zh = ["notice delivered"], ["通知送达"]
        if days:
            en.append(f"still present on day{'s' if len(days) > 1 else ''} {', '.join(days)}")
            zh.append(f"第 {'、'.join(days)} 天仍然存在")
        if self.removal is not None:
            en.append(f"removed on day {self.day(self.removal)}")
            zh.append(f"第 {self.day(self.removal)} 天被删除")
        elif days:
            en.append("not found removed yet")
            zh.append("尚未发现删除")
        return " → ".join(en), " → ".join(zh)


@dataclass(frozen=True)
class TimelineDocument:
    title: str
    entries: tuple[TimelineEntry, ...]
    #: The matter (case) or subject the timeline is of, shown under the title.
    subtitle: str | None = None
    generated_at: datetime | None = None
    #: (English, Chinese) lines shown above the events: how the timeline verified, for one.
    notes: tuple[tuple[str, str], ...] = ()

    @property
    def ordered(self) -> list[TimelineEntry]:
        """The entries in time order (stable for events at one time)."""
        if len(self.entries) > MAX_ENTRIES:
            raise InvalidInput(f"a timeline of {len(self.entries)} events; the limit is {MAX_ENTRIES}")
        return sorted(self.entries, key=lambda e: _utc(e.time))

    def courses(self) -> list[NoticeCourse]:
        """For each notice followed by a capture that says whether the content is there: the course of
        the content until the first removal (a later notice starts its own course)."""
        found: list[NoticeCourse] = []
        notice: TimelineEntry | None = None
        present: list[TimelineEntry] = []
        removal: TimelineEntry | None = None

        def close() -> None:
            if notice is not None and (present or removal is not None):
                found.append(NoticeCourse(notice, tuple(present), removal))

        for entry in self.ordered:
            if entry.kind == "notice":
                close()
                notice, present, removal = entry, [], None
            elif notice is None or removal is not None:
                continue
            elif entry.kind == "removal":
                removal = entry
            elif entry.content_present:
                present.append(entry)
        close()
        return found

    def delays(self) -> list[RemovalDelay]:
        """For each removal, the delay since the latest notice delivered at or before it."""
        found, notice = [], None
        for entry in self.ordered:
            if entry.kind == "notice":
                notice = entry
            elif entry.kind == "removal" and notice is not None:
                found.append(RemovalDelay(notice, entry))
        return found


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _time_lines(moment: datetime) -> list[str]:
    """Beijing time, then UTC, one a line (``format_time`` puts them on one)."""
    return format_time(_utc(moment)).split(" / ")


def _shown(value: object, limit: int = MAX_FIELD_CHARS) -> str:
    shown = display_text(str(value))
    return shown if len(shown) <= limit else shown[:limit - 1] + "…"


def safe_link(link: str | None) -> str | None:
    """``link`` when it is an http(s) URL without credentials or a plain relative path; else None."""
    if not link or len(link) > MAX_LINK_CHARS:
        return None
    if _RELATIVE_PATH.match(link) and not link.startswith("/") and ".." not in link.split("/"):
        return link
    try:
        parts = urlsplit(link)
    except ValueError:
        return None
    if parts.scheme in ("http", "https") and parts.hostname and not parts.username and not parts.password \
            and link.isascii() and link.isprintable() and " " not in link:
        return link
    return None


def thumbnail_size(png: bytes | None) -> tuple[int, int] | None:
    """The (width, height) of a PNG fit to be a thumbnail, read from its header; None otherwise."""
    if png is None or len(png) > MAX_THUMBNAIL_BYTES or not png.startswith(PNG_SIGNATURE) or len(png) < 24 \
            or png[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", png[16:24])
    if not width or not height or width * height > MAX_THUMBNAIL_PIXELS:
        return None
    return width, height


def _event_lines(entry: TimelineEntry, delays: Mapping[int, RemovalDelay],
                 presence: Mapping[int, tuple[str, str]]) -> list[tuple[str, str]]:
    """The event's text as (English, Chinese) pairs; values from the caller appear in both."""
    en, zh = KINDS[entry.kind]
    lines = [(en, zh)]
    if entry.summary:
        lines.append((_shown(entry.summary), ""))
    delay = delays.get(id(entry))
    if delay is not None:
        lines.append(delay.words)
    if id(entry) in presence:
        lines.append(presence[id(entry)])
    return lines


def _presence_lines(courses: list[NoticeCourse]) -> dict[int, tuple[str, str]]:
    """For each capture that still found the content after a notice: its line, by entry."""
    return {id(entry): (f"still present on day {course.day(entry)} after the notice was delivered",
                        f"通知送达后第 {course.day(entry)} 天仍然存在")
            for course in courses for entry in course.present}


def _evidence_lines(entry: TimelineEntry) -> list[tuple[str, str, str]]:
    """(label, 标签, value) rows for the evidence column."""
    rows = [("evidence", "证据编号", _shown(entry.evidence_id))]
    if entry.fingerprint:
        rows.append(("fingerprint", "证据指纹", _shown(entry.fingerprint, 64)))
    if entry.status:
        rows.append(("status", "状态", _shown(entry.status)))
    if entry.anchor_tx:
        rows.append(("anchor tx", "锚定交易", _shown(entry.anchor_tx, 66)))
    return rows


# -- HTML -------------------------------------------------------------------------------------------------

_CSS = """
body{font:14px/1.45 system-ui,"Noto Sans CJK SC","WenQuanYi Micro Hei",sans-serif;color:#1f2328;
margin:24px auto;max-width:1100px;padding:0 16px}
h1{font-size:22px;margin:0}h1 small,.zh{color:#59636e}.sub{color:#59636e;margin:4px 0 16px}
table{border-collapse:collapse;width:100%}
th,td{border-bottom:1px solid #c8d1da;padding:8px;vertical-align:top;text-align:left}
th{background:#f2f4f7;font-weight:600}.kind{font-weight:600}
.mono{font-family:ui-monospace,monospace;font-size:12px;word-break:break-all}
.delay{font-weight:600;color:#cf222e}.delay .zh{color:inherit}
img.thumb{max-width:160px;max-height:200px;border:1px solid #c8d1da}
.delays li{margin:4px 0}.note{margin:4px 0}.note.first{font-weight:600}
footer{color:#59636e;font-size:12px;margin-top:24px}
"""


def _e(value: object) -> str:
    return html.escape(display_text(str(value)), quote=True)


def _pair_html(en: str, zh: str) -> str:
    return _e(en) + (f'<br><span class="zh">{_e(zh)}</span>' if zh else "")


def render_timeline_html(document: TimelineDocument) -> str:
    """The timeline as one self-contained, bilingual HTML page (thumbnails inline as data: URIs)."""
    entries = document.ordered
    delays, courses = document.delays(), document.courses()
    by_entry = {id(d.removal): d for d in delays}
    presence = _presence_lines(courses)
    when = format_time(document.generated_at or datetime.now(UTC))
    rows = []
    for entry in entries:
        colour = KIND_COLOURS[entry.kind]
        event = _event_lines(entry, by_entry, presence)
        kind_en, kind_zh = event[0]
        cells = [f'<span class="kind" style="color:{colour}">{_pair_html(kind_en, kind_zh)}</span>']
        for en, zh in event[1:]:
            style = ' class="delay"' if zh.startswith("通知送达后") else ""
            cells.append(f"<div{style}>{_pair_html(en, zh)}</div>")
        evidence = "".join(f'<div><span class="zh">{_e(label)} {_e(label_zh)}:</span> '
                           f'<span class="mono">{_e(value)}</span></div>'
                           for label, label_zh, value in _evidence_lines(entry))
        link = safe_link(entry.link)
        if link:
            evidence += f'<div><a href="{html.escape(link, quote=True)}">package 证据包</a></div>'
        thumb = ""
        if thumbnail_size(entry.thumbnail_png) is not None and entry.thumbnail_png is not None:
            data = base64.b64encode(entry.thumbnail_png).decode("ascii")
            thumb = f'<img class="thumb" alt="screenshot 截图" src="data:image/png;base64,{data}">'
        rows.append(f"<tr><td>{'<br>'.join(_e(part) for part in _time_lines(entry.time))}</td><td>{''.join(cells)}</td>"
                    f"<td>{evidence}</td><td>{thumb}</td></tr>")
    summary = ""
    if delays or courses:
        items = "".join(f"<li>{_e(c.notice.evidence_id)}: {_pair_html(*c.words)}</li>" for c in courses)
        items += "".join(f"<li>{_e(d.removal.evidence_id)}: {_pair_html(*d.words)}</li>" for d in delays)
        summary = (f'<h2>Notice to removal <small class="zh">通知至删除</small></h2>'
                   f'<ul class="delays">{items}</ul>')
    subtitle = f'<p class="sub">{_e(_shown(document.subtitle))}</p>' if document.subtitle else ""
    subtitle += "".join(f'<p class="note{" first" if number == 0 else ""}">'
                        f'{_pair_html(_shown(en, MAX_NOTE_CHARS), _shown(zh, MAX_NOTE_CHARS))}</p>'
                        for number, (en, zh) in enumerate(document.notes))
    return (f'<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width,initial-scale=1">'
            f"<title>{_e(_shown(document.title))}</title><style>{_CSS}</style></head><body>"
            f'<h1>{_e(_shown(document.title))} <small>证据时间线 / Evidence timeline</small></h1>{subtitle}'
            f'<p class="sub">{len(entries)} events, in time order · 共 {len(entries)} 项事件，按时间顺序排列 · '
            f"generated 生成于 {_e(when)}</p>{summary}"
            "<table><thead><tr><th>Time 时间</th><th>Event 事件</th><th>Evidence 证据</th><th>Screenshot 截图</th>"
            f"</tr></thead><tbody>{''.join(rows)}</tbody></table>"
            f"<footer>{_e(FOOTER[0])}<br>{_e(FOOTER[1])}</footer></body></html>")


FOOTER = (f"Made by tiezheng-verify {__version__}. Each line names the package that proves it: verify each with "
          "tiezheng-verify PACKAGE, and the chain of a watch's captures with tiezheng-verify timeline FOLDER.",
          "每一行均列明证明该事件的证据包：可用 tiezheng-verify PACKAGE 逐一验证，"
          "并用 tiezheng-verify timeline FOLDER 验证监控任务各次取证之间的链。")


# -- PDF --------------------------------------------------------------------------------------------------

def render_timeline_pdf(document: TimelineDocument) -> bytes:
    """The timeline as PDF bytes (A4 portrait, fonts embedded). Raises InvalidInput when
    the ``pdf`` extra is missing."""
    try:
        from reportlab.lib.pagesizes import A4
        from reportlab.lib.styles import ParagraphStyle
        from reportlab.lib.units import mm
        from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle
    except ImportError as exc:
        raise InvalidInput("writing a PDF needs the optional 'pdf' extra: pip install 'tiezheng[pdf]'") from exc
    from verifier.report.pdf_fonts import MONO, SANS, SANS_BOLD, markup, register_cjk_font, register_latin_fonts

    cjk = register_cjk_font()
    register_latin_fonts()
    entries = document.ordered
    delays, courses = document.delays(), document.courses()
    by_entry = {id(d.removal): d for d in delays}
    presence = _presence_lines(courses)
    body = ParagraphStyle("tl", fontName=SANS, fontSize=8, leading=10.5, wordWrap="CJK")
    small = ParagraphStyle("tl-small", body, fontSize=7, leading=9, textColor="#59636e")
    mono = ParagraphStyle("tl-mono", body, fontName=MONO, fontSize=6.6, leading=8.6)
    title = ParagraphStyle("tl-title", body, fontName=SANS_BOLD, fontSize=15, leading=20)
    h2 = ParagraphStyle("tl-h2", body, fontName=SANS_BOLD, fontSize=10, leading=14, spaceBefore=8, spaceAfter=3)

    def pair(en: str, zh: str) -> str:
        return markup(en, cjk) + (f'<br/><font color="#59636e">{markup(zh, cjk)}</font>' if zh else "")

    buffer = io.BytesIO()
    doc = SimpleDocTemplate(buffer, pagesize=A4, leftMargin=14 * mm, rightMargin=14 * mm, topMargin=14 * mm,
                            bottomMargin=16 * mm, title=f"Evidence timeline {display_text(document.title)[:100]}",
                            author=f"tiezheng-verify {__version__}", initialFontName=SANS)
    when = format_time(document.generated_at or datetime.now(UTC))
    story: list[Any] = [Paragraph(markup(f"{_shown(document.title)}  证据时间线 / Evidence timeline", cjk), title)]
    if document.subtitle:
        story.append(Paragraph(markup(_shown(document.subtitle), cjk), small))
    for number, (en, zh) in enumerate(document.notes):
        shown = pair(_shown(en, MAX_NOTE_CHARS), _shown(zh, MAX_NOTE_CHARS))
        story.append(Paragraph(f"<b>{shown}</b>" if number == 0 else shown, body))
    story.append(Paragraph(pair(f"{len(entries)} events, in time order; generated {when}",
                                f"共 {len(entries)} 项事件，按时间顺序排列；生成于 {when}"), small))
    if delays or courses:
        story.append(Paragraph(pair("Notice to removal", "通知至删除"), h2))
        for course in courses:
            story.append(Paragraph(markup(f"{_shown(course.notice.evidence_id)}: ", cjk) + pair(*course.words), body))
        for delay in delays:
            en, zh = delay.words
            story.append(Paragraph(markup(f"{_shown(delay.removal.evidence_id)}: ", cjk) + pair(en, zh), body))
    story.append(Spacer(1, 6))
    widths = [34 * mm, 48 * mm, doc.width - (34 + 48 + THUMBNAIL_MM + 4) * mm, (THUMBNAIL_MM + 4) * mm]
    rows: list[list[Any]] = [[Paragraph(pair(en, zh), small) for en, zh in
                              (("Time", "时间"), ("Event", "事件"), ("Evidence", "证据"), ("Screenshot", "截图"))]]
    for entry in entries:
        event = _event_lines(entry, by_entry, presence)
        colour = KIND_COLOURS[entry.kind]
        kind = f'<font color="{colour}"><b>{pair(*event[0])}</b></font>'
        more = "".join("<br/>" + (f'<font color="#cf222e"><b>{markup(en, cjk)}<br/>{markup(zh, cjk)}</b></font>'
                                  if zh.startswith("通知送达后") else pair(en, zh)) for en, zh in event[1:])
        evidence: list[Any] = [Paragraph(f'<font color="#59636e">{markup(f"{label} {label_zh}", cjk)}</font> '
                                         + markup(value, cjk), mono if label in ("fingerprint", "anchor tx") else body)
                               for label, label_zh, value in _evidence_lines(entry)]
        link = safe_link(entry.link)
        if link:
            evidence.append(Paragraph(f'<a href="{html.escape(link, quote=True)}" color="#0969da">'
                                      f'{markup("package 证据包", cjk)}</a>', body))
        rows.append([Paragraph("<br/>".join(markup(part, cjk) for part in _time_lines(entry.time)), small),
                     Paragraph(kind + more, body), evidence, _thumbnail(entry.thumbnail_png, THUMBNAIL_MM * mm)])
    table = Table(rows, colWidths=widths, repeatRows=1)
    table.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("FONTNAME", (0, 0), (-1, -1), SANS),
                               ("BACKGROUND", (0, 0), (-1, 0), "#f2f4f7"),
                               ("LINEBELOW", (0, 0), (-1, -1), 0.4, "#c8d1da")]))
    story += [table, Spacer(1, 8), Paragraph(pair(*FOOTER), small)]
    doc.build(story)
    return buffer.getvalue()


def _thumbnail(png: bytes | None, width: float) -> Any:
    """A reportlab Image of the thumbnail scaled to ``width``, or an empty cell."""
    size = thumbnail_size(png)
    if size is None or png is None:
        return ""
    from PIL import Image as PILImage
    from reportlab.platypus import Image

    try:  # decoded once here, as PNG only, so reportlab is handed nothing Pillow could not read
        with PILImage.open(io.BytesIO(png), formats=["PNG"]) as image:
            image.load()
    except (OSError, ValueError, PILImage.DecompressionBombError):
        return ""
    pixels_wide, pixels_high = size
    # A full-page screenshot is tall: its top, at most about two widths high, is what a thumbnail shows.
    scale = min(width / pixels_wide, MAX_THUMBNAIL_ASPECT * width / pixels_high)
    return Image(io.BytesIO(png), width=pixels_wide * scale, height=pixels_high * scale)


def write_timeline(document: TimelineDocument, *, html_path: Path | None = None, pdf_path: Path | None = None) -> None:
    """Write the HTML and/or PDF document to the given paths. Raises OSError, InvalidInput."""
    if html_path is not None:
        html_path.write_text(render_timeline_html(document), encoding="utf-8")
    if pdf_path is not None:
        pdf_path.write_bytes(render_timeline_pdf(document))

