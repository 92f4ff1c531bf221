"""The timeline document: bilingual HTML and PDF, events in time order, the notice-to-removal delay worded,
every string escaped."""

from __future__ import annotations

import io
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from verifier.errors import InvalidInput
from verifier.report.timeline import (
    MAX_THUMBNAIL_BYTES,
    TimelineDocument,
    TimelineEntry,
    render_timeline_html,
    render_timeline_pdf,
    safe_link,
    thumbnail_size,
)

START = datetime(2026, 11, 2, 1, 30, tzinfo=UTC)
HOSTILE = "<script>alert(1)</script> \u202eevil\u202c & “quotes”"


def thumbnail(colour: str, text: str = "") -> bytes:
    image = Image.new("RGB", (160, 240), "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, 160, 24), fill=(255, 80, 0))
    draw.rectangle((12, 40, 148, 170), fill=colour)
    draw.text((12, 190), text, fill="black")
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def fingerprint(n: int) -> str:
    return f"{n:02x}" * 32


def document() -> TimelineDocument:
    notice_at = START + timedelta(days=1, hours=2)
    entries = (
        TimelineEntry(START + timedelta(days=5, hours=6), "removal", "tz-20261107T073000-000000000004",
                      fingerprint(4), "verified", "0x" + "ab" * 32, thumbnail("white", "404"),
                      "packages/tz-20261107T073000-000000000004.wacz", "HTTP 404: 该商品已下架"),
        TimelineEntry(START, "capture", "tz-20261102T013000-000000000001", fingerprint(1), "verified",
                      "0x" + "01" * 32, thumbnail("navy", "¥ 99.00"), "https://evidence.example/v1/evidence/1/package",
                      "first capture of the listing"),
        TimelineEntry(notice_at, "notice", "tz-20261103T033000-000000000002", fingerprint(2), "sealed",
                      summary="takedown notice delivered to the platform (E-Commerce Law Art. 42)"),
        TimelineEntry(START + timedelta(days=2), "change", "tz-20261104T013000-000000000003", fingerprint(3),
                      "verified", thumbnail_png=thumbnail("navy", "¥ 79.00"), summary="price ¥ 99.00 → ¥ 79.00"),
        TimelineEntry(START + timedelta(days=9), "reappearance", "tz-20261111T013000-000000000005",
                      fingerprint(5), "verified", thumbnail_png=thumbnail("darkgreen", "new shop"),
                      link="javascript:alert(1)", summary=HOSTILE),
    )
    return TimelineDocument(title="Matter 2026-017: 羽绒服 infringing listings", entries=entries,
                            subtitle="subject: shop.example/store/8812 (卖家 “暖冬旗舰店”)",
                            generated_at=datetime(2026, 12, 1, 9, 0, tzinfo=UTC))


def test_the_delay_between_notice_and_removal() -> None:
    [delay] = document().delays()
    assert delay.delay == timedelta(days=4, hours=4)
    assert delay.words == ("removed 4 days 4 hours after the notice was delivered", "通知送达后 4 天 4 小时被删除")


def test_html_lists_events_in_time_order_bilingually() -> None:
    page = render_timeline_html(document())
    kinds = ["Capture", "Notice delivered", "Change", "Removal", "Reappearance"]
    positions = [page.index(f"{kind}<br>") for kind in kinds]
    assert positions == sorted(positions)
    assert "removed 4 days 4 hours after the notice was delivered" in page and "通知送达后 4 天 4 小时被删除" in page
    assert "证据时间线" in page and "Evidence timeline" in page
    assert page.count("data:image/png;base64,") == 4
    assert 'href="https://evidence.example/v1/evidence/1/package"' in page
    assert 'href="packages/tz-20261107T073000-000000000004.wacz"' in page


def test_html_escapes_every_string() -> None:
    page = render_timeline_html(document())
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "\u202e" not in page
    assert "javascript:" not in page


def test_links_and_thumbnails_are_judged() -> None:
    assert safe_link("javascript:alert(1)") is None
    assert safe_link("https://user:pw@evidence.example/x") is None
    assert safe_link("../../etc/passwd") is None and safe_link("/etc/passwd") is None
    assert safe_link("packages/a.wacz") == "packages/a.wacz"
    assert thumbnail_size(b"GIF89a" + bytes(100)) is None
    assert thumbnail_size(thumbnail("red")) == (160, 240)
    assert thumbnail_size(thumbnail("red") + bytes(MAX_THUMBNAIL_BYTES)) is None


def test_an_unknown_kind_is_refused() -> None:
    with pytest.raises(InvalidInput, match="not one of"):
        TimelineEntry(START, "rumour", "tz-1")


def test_pdf(tmp_path: Path) -> None:
    data = render_timeline_pdf(document())
    assert data.startswith(b"%PDF")
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) is not installed")
    path = tmp_path / "timeline.pdf"
    path.write_bytes(data)
    text = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True,
                          check=True).stdout
    assert "removed 4 days 4 hours after the notice was" in text
    assert "通知送达后 4 天 4 小时被删除" in text.replace("\n", "")
    assert "<script>alert(1)</script>" in text  # shown as text, not markup
    fonts = subprocess.run(["pdffonts", str(path)], capture_output=True, text=True, check=True).stdout
    assert "Helvetica" not in fonts  # every font embedded, none left to the viewer


def test_a_notices_course_is_worded_by_day_still_present_then_removed() -> None:
    # Delivered 2026-12-01 23:30 in Beijing (15:30 UTC): day 0 is that Beijing date, as a window counts.
    notice_at = datetime(2026, 12, 1, 15, 30, tzinfo=UTC)
    entries = (
        TimelineEntry(notice_at - timedelta(days=3), "capture", "tz-1", content_present=None),
        TimelineEntry(notice_at, "notice", "tz-2"),
        TimelineEntry(notice_at + timedelta(hours=1), "reply", "tz-3"),
        # 00:30 next day in Beijing: day 1, though under a day later.
        TimelineEntry(notice_at + timedelta(hours=1), "capture", "tz-4", content_present=True),
        TimelineEntry(notice_at + timedelta(days=16), "change", "tz-5", content_present=True),
        TimelineEntry(notice_at + timedelta(days=18), "removal", "tz-6", content_present=False),
        TimelineEntry(notice_at + timedelta(days=19), "capture", "tz-7", content_present=False),
        TimelineEntry(notice_at + timedelta(days=30), "reappearance", "tz-8", content_present=True),
    )
    doc = TimelineDocument("Course", entries)
    (course,) = doc.courses()
    assert [e.evidence_id for e in course.present] == ["tz-4", "tz-5"]
    assert course.words == ("notice delivered → still present on days 1, 16 → removed on day 18",
                            "通知送达 → 第 1、16 天仍然存在 → 第 18 天被删除")
    page = render_timeline_html(doc)
    assert "still present on day 16 after the notice was delivered" in page and "通知送达后第 16 天仍然存在" in page
    assert "notice delivered → still present on days 1, 16 → removed on day 18" in page
    # A reappearance after the removal is not "still present": the course ended with the removal.
    assert "day 30" not in page
    assert render_timeline_pdf(doc).startswith(b"%PDF")

    # No removal found yet: the course says so; a second notice starts its own course.
    open_course = TimelineDocument("Open", (
        *entries[1:5], TimelineEntry(notice_at + timedelta(days=20), "notice", "tz-9"),
        TimelineEntry(notice_at + timedelta(days=36), "capture", "tz-10", content_present=True)))
    first, second = open_course.courses()
    assert first.words[0] == "notice delivered → still present on days 1, 16 → not found removed yet"
    assert second.words == ("notice delivered → still present on day 16 → not found removed yet",
                            "通知送达 → 第 16 天仍然存在 → 尚未发现删除")
