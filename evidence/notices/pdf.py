"""The notice as a bilingual (中文 / English) PDF: the document the platform receives, attached to the mail.

It uses the certificate's fonts (``verifier.report.pdf_fonts``: every face embedded, Chinese in the
CJK font), so notice and certificate look alike. Every value is escaped before it reaches
reportlab's markup parser: names, grounds and URLs are user text. The PDF's creation date is the
notice's own ``created_at``, so one record always renders to the same bytes.
"""

from __future__ import annotations

import io
from typing import Any

from evidence.notices.model import Notice
from verifier.notice_rules import ELEMENTS, RuleResult
from verifier.report.pdf_fonts import MONO, SANS, SANS_BOLD, markup, register_cjk_font, register_latin_fonts

INK, MUTED, LINE, SHADE = "#1f2328", "#59636e", "#c8d1da", "#f2f4f7"
MARGIN_MM = 18
TITLES = {"notice": ("Notice of infringement and request for takedown", "侵权通知及删除请求"),
          "correction": ("Corrected notice of infringement", "更正后的侵权通知"),
          "withdrawal": ("Withdrawal of notice", "撤回通知")}


def render_notice_pdf(notice: Notice, results: tuple[RuleResult, ...]) -> bytes:
    """The notice PDF's bytes. ``results`` is the completeness gate's verdict, listed at the end."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    cjk = register_cjk_font()
    register_latin_fonts()
    body = ParagraphStyle("nt", fontName=SANS, fontSize=9, leading=12.5, textColor=INK, wordWrap="CJK")
    small = ParagraphStyle("nt-small", body, fontSize=7.6, leading=10, textColor=MUTED)
    mono = ParagraphStyle("nt-mono", body, fontName=MONO, fontSize=7.4, leading=9.6)
    title = ParagraphStyle("nt-title", body, fontName=SANS_BOLD, fontSize=15, leading=20)
    h2 = ParagraphStyle("nt-h2", body, fontName=SANS_BOLD, fontSize=10.5, leading=14, spaceBefore=10, spaceAfter=4)

    def p(value: object, style: Any = body) -> Paragraph:
        return Paragraph(markup(value, cjk), style)

    def heading(en: str, zh: str) -> Paragraph:
        return Paragraph(f'{markup(zh, cjk)}  <font color="{MUTED}">{markup(en, cjk)}</font>', h2)

    def table(rows: list[list[Any]], widths: list[float]) -> Table:
        grid = Table(rows, colWidths=widths, repeatRows=1)
        grid.setStyle(TableStyle([("LINEBELOW", (0, 0), (-1, -1), 0.4, LINE), ("BACKGROUND", (0, 0), (-1, 0), SHADE),
                                  ("VALIGN", (0, 0), (-1, -1), "TOP")]))
        return grid

    record = notice.to_json()
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(buffer, pagesize=A4, leftMargin=MARGIN_MM * mm, rightMargin=MARGIN_MM * mm,
                            topMargin=MARGIN_MM * mm, bottomMargin=MARGIN_MM * mm, initialFontName=SANS,
                            title=f"Notice {notice.notice_id}", author=notice.owner.name or "Tiezheng",
                            subject=notice.notice_id, invariant=True)
    width = doc.width
    en_title, zh_title = TITLES[notice.action]
    story: list[Any] = [
        Paragraph(f"{markup(zh_title, cjk)}<br/>{markup(en_title, cjk)}", title),
        p(f"通知编号 Notice: {notice.notice_id} · 第 {notice.version} 版 version {notice.version} · "
          f"{record['created_at']}", small),
    ]
    if notice.previous:
        story.append(p(f"本版本取代 This version replaces the sealed notice with fingerprint {notice.previous}", small))
    if notice.recipient:
        story.append(p(f"致 To: {notice.recipient}", body))
    if notice.matter:
        story.append(p(f"案件 Matter: {notice.matter}", small))

    story.append(heading("Right owner", "权利人"))
    owner = notice.owner
    story.append(table([[p("项目 Item"), p("内容 Value")],
                        [p("名称 Name"), p(owner.name or "—")],
                        [p("证件号码 Identifier"), p(owner.identifier or "—")],
                        [p("电子邮件 E-mail"), p(owner.email or "—")],
                        [p("电话 Telephone"), p(owner.phone or "—")],
                        [p("地址 Address"), p(owner.address or "—")]], [width * 0.28, width * 0.72]))

    if notice.action == "withdrawal":
        story.append(heading("Withdrawal", "撤回"))
        story.append(p("通知人撤回上述编号的通知，请停止依据该通知采取的措施。"))
        story.append(p("The notifier withdraws the notice named above; please stop the measures taken on it."))
    story.append(heading("Infringing content and preliminary evidence", "侵权内容及初步证据"))
    rows: list[list[Any]] = [[p("#"), p("网络地址 URL / 已封存取证 sealed capture")]]
    for i, item in enumerate(notice.infringing, 1):
        sealed = (f"{item.evidence_id} · sha256 {item.fingerprint}" if item.fingerprint
                  else "尚无已封存取证 no sealed capture yet")
        rows.append([p(str(i)), [p(item.url), Paragraph(markup(sealed, cjk), mono)]])
    story.append(table(rows, [width * 0.07, width * 0.93]))

    story.append(heading("Proof of the right", "权利证明"))
    rows = [[p("#"), p("文件 Document / 已封存证据 sealed evidence")]]
    for i, proof in enumerate(notice.right_proofs, 1):
        rows.append([p(str(i)), [p(proof.title or "—"),
                                 Paragraph(markup(f"{proof.evidence_id} · sha256 {proof.fingerprint}", cjk), mono)]])
    story.append(table(rows, [width * 0.07, width * 0.93]))

    story.append(heading("Grounds", "理由"))
    story.append(p(notice.grounds or "—"))
    story.append(heading("Guarantee of authenticity", "真实性保证"))
    for line in (notice.guarantee or "—").splitlines():
        story.append(p(line))
    story.append(p("已确认 Given: " + ("是 yes" if notice.guarantee_given else "否 no"), small))

    story.append(heading("Completeness under the rules", "依规则的完备性"))
    rows = [[p("规则 Rule"), p("结论 Result")]]
    for result in results:
        verdict = ("完备 complete" if result.complete else
                   "缺少 missing: " + "; ".join(f"{ELEMENTS[e].zh} {ELEMENTS[e].en}" for e in result.missing))
        rows.append([[p(result.rule_set.zh, small), p(result.rule_set.en, small)], p(verdict)])
    story.append(table(rows, [width * 0.55, width * 0.45]))
    story.append(Spacer(1, 6 * mm))
    story.append(p("每一证据的指纹（sha256）可用 tiezheng-verify 对照其证据包核验。"
                   "Each fingerprint (sha256) can be checked against its evidence package with tiezheng-verify.",
                   small))
    doc.build(story)
    return buffer.getvalue()
