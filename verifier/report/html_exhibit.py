"""The HTML report's sections about the package itself: what was captured, and the fill-in certifications.

Every value goes through ``html_text.escaped`` (sanitize.display_text, then html.escape).
The screenshot is embedded as a data: URI, so the page stays self-contained; the page's
Content-Security-Policy allows images from data: URIs only.
"""

from __future__ import annotations

import base64

from verifier.report.certification import Certification
from verifier.report.exhibit import STEPS_TITLE, Exhibit, step_lines, target_rows, video_line
from verifier.report.html_text import bilingual, escaped
from verifier.verdict import Report


def captured_section(report: Report, exhibit: Exhibit) -> str:
    """What was captured: the target as a small table and the screenshot (first screen, then all of it)."""
    rows = "".join(f"<dt>{bilingual(en, zh)}</dt><dd>{escaped(value)}</dd>" for en, zh, value in target_rows(report))
    shot = exhibit.screenshot
    steps, video = step_lines(report), video_line(report)
    if not rows and shot is None and not exhibit.screenshot_note and not steps and not video:
        return ""
    body = f"<dl>{rows}</dl>" if rows else ""
    if steps:
        items = "".join(f"<li>{escaped(line)}</li>" for line in steps)
        body += f'<h3>{bilingual(*STEPS_TITLE)}</h3><ol class="steps">{items}</ol>'
    if video:
        body += f'<p class="detail">{bilingual("Session video", "录屏视频")}: {escaped(video)}</p>'
    if shot is not None:
        # The PNG's header passed the exhibit's size checks; a data: URI keeps the page self-contained.
        uri = "data:image/png;base64," + base64.b64encode(shot.png).decode("ascii")
        ratio = f"{shot.width} / {shot.first_screen}"
        body += (f'<figure class="shot"><div class="fold" style="aspect-ratio:{ratio}">'
                 f'<img src="{uri}" alt="first screen of the screenshot / 截图首屏"></div>'
                 f"<figcaption>{bilingual('First screen of the screenshot', '截图首屏')} "
                 f"({shot.width} × {shot.first_screen} px)</figcaption></figure>"
                 f"<details><summary>{bilingual('Full page screenshot', '整页截图')} ({shot.width} × {shot.height} px)"
                 f'</summary><img class="full" src="{uri}" alt="full page screenshot / 整页截图"></details>')
    elif exhibit.screenshot_note:
        body += f'<p class="detail">{escaped(exhibit.screenshot_note)}</p>'
    return f"<section><h2>{bilingual('What was captured', '采集对象')}</h2>{body}</section>"


def media_section(exhibit: Exhibit) -> str:
    """The embedded media: a thumbnail for each of the first pictures, type, size, sha256 and URL."""
    media = exhibit.media
    if not media.entries:
        return ""
    rows = []
    for entry in media.entries:
        picture = ""
        if entry.thumbnail_png is not None:
            uri = "data:image/png;base64," + base64.b64encode(entry.thumbnail_png).decode("ascii")
            picture = f'<img src="{uri}" alt="thumbnail / 缩略图" style="max-width:160px;max-height:160px">'
        saved = f"<br>{escaped(entry.saved_as)}" if entry.saved_as else ""
        rows.append(f"<tr><td>{picture}</td><td>{escaped(entry.media_type)}<br>{entry.size:,} B</td>"
                    f"<td><code>{escaped(entry.sha256)}</code>{saved}</td><td>{escaped(entry.url)}</td></tr>")
    more_en, more_zh = f"and {media.more} more in evidence/media.json", f"另有 {media.more} 项见 evidence/media.json"
    more = f'<p class="detail">{bilingual(more_en, more_zh)}</p>' if media.more else ""
    note = bilingual("Each hash is of the bytes served, held to its WARC record by P2.",
                     "各哈希为所提供文件的哈希，P2 已与 WARC 记录核对。")
    head = (f"<tr><th></th><th>{bilingual('Type, size', '类型、大小')}</th><th>SHA-256</th>"
            f"<th>{bilingual('URL', '网址')}</th></tr>")
    return (f"<section><h2>{bilingual('Embedded media', '嵌入媒体')}</h2>"
            f'<p class="detail">{note}</p>'
            f"<table>{head}{''.join(rows)}</table>{more}</section>")


def certification_section(cert: Certification) -> str:
    parts = [f"<h2>{escaped(cert.title)}</h2><p class=\"detail\">{escaped(cert.subtitle)}</p>"]
    for section in cert.sections:
        paragraphs = "".join(f"<p>{escaped(p)}</p>" for p in section.paragraphs)
        parts.append(f"<h3>{escaped(section.heading)}</h3>{paragraphs}")
    fields = "".join(f"<dt>{escaped(label)}</dt><dd></dd>" for label in cert.signature_fields)
    parts.append(f'<dl class="sign">{fields}</dl>')
    return f'<section class="cert" lang="{escaped(cert.lang)}">{"".join(parts)}</section>'
