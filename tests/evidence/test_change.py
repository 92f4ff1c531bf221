"""Change detection between a watch's captures: real Pillow screenshots, real HTML pages, real packages."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from evidence.change import SCREENSHOT_CHANGED_FRACTION, CaptureFiles, ChangeError, compare
from evidence.operator_key import load_or_create
from evidence.page_text import MAX_STRING_CHARS, FieldSpecError, KeyField, page_text, parse_key_fields
from evidence.perceptual_hash import screenshot_hash
from evidence.removal import removal
from tests.chain_factory import capture_files, capture_like_package
from tests.tamper import replace_sealed_entry
from verifier import canonical
from verifier.capture_format import DOM_PATH, SCREENSHOT_PATH, SOURCE_PATH
from verifier.change_record import CHANGE_FORMAT, parse_change

PRICE = KeyField("price", ".price")
SALES = KeyField("sales", "#sales span")
FIELDS = (PRICE, SALES)


def listing(price: str = "¥ 99.00", sales: str = "1,204", extra: str = "") -> str:
    return f"""<!doctype html><html><head><title>羽绒服 2026 冬季新款</title>
<style>.price {{ color: red }}</style><script>window.track = 1;</script></head>
<body><header><nav><a href="/">首页</a> <a href="/c">分类</a></nav></header>
<main><h1>羽绒服 2026 冬季新款 <b>加厚</b></h1>
<div class="price">{price}</div><p id="sales">月销 <span>{sales}</span></p>
<ul><li>颜色：黑色</li><li>尺码：M L XL</li></ul>{extra}
<p>商品详情：90% 白鸭绒，防水面料。</p></main><footer>© shop.example</footer></body></html>"""


NOTICE = """<html><head><title>淘宝网 - 商品详情</title></head><body><div class="tip">
<p>很抱歉，您查看的宝贝不存在，可能已下架或者被转移。</p><p>该商品已下架</p></div></body></html>"""
NOT_FOUND = "<html><head><title>404 Not Found</title></head><body><h1>Not Found</h1></body></html>"


def screenshot(picture: str = "coat", noise: tuple[int, int] | None = None) -> bytes:
    """A 800 x 1400 full-page screenshot of a listing: a product picture, a price band, text rows."""
    image = Image.new("RGB", (800, 1400), "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, 800, 60), fill=(255, 80, 0))  # the shop's header bar
    if picture == "coat":
        draw.rectangle((40, 100, 440, 600), fill=(30, 30, 40))
        draw.ellipse((140, 180, 340, 380), fill=(200, 200, 210))
    elif picture == "other":
        draw.rectangle((40, 100, 440, 600), fill=(240, 220, 60))
        draw.polygon([(60, 580), (240, 120), (420, 580)], fill=(20, 120, 40))
    draw.rectangle((480, 120, 760, 170), fill=(220, 0, 0))  # the price
    for row in range(20):
        draw.rectangle((40, 660 + row * 36, 40 + (row * 97) % 700 + 60, 680 + row * 36), fill=(60, 60, 60))
    if noise is not None:
        image.putpixel(noise, (0, 255, 0))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


@pytest.fixture()
def operator(tmp_path: Path):  # type: ignore[no-untyped-def]
    return load_or_create(tmp_path / "operator.key")


def previous_package(tmp_path: Path, operator, *, dom: str = listing(), status: int = 200,  # type: ignore[no-untyped-def]
                     picture: str = "coat") -> Path:
    return capture_like_package(tmp_path, operator, capture_files(screenshot(picture), dom), http_status=status).path


def current(dom: str = listing(), status: int = 200, picture: str = "coat",
            noise: tuple[int, int] | None = None) -> CaptureFiles:
    return CaptureFiles(http_status=status, final_url="https://shop.example/item/1", dom_html=dom.encode(),
                        source_html=dom.encode(), screenshot_png=screenshot(picture, noise))


def test_unchanged_with_one_pixel_of_noise(tmp_path: Path, operator) -> None:  # type: ignore[no-untyped-def]
    change = compare(previous_package(tmp_path, operator), current(noise=(500, 900)), key_fields=FIELDS)
    body = change.to_json()
    assert change.classification == "unchanged", body["signals"]
    assert body["screenshot"]["compared"] and body["screenshot"]["distance"] == 0
    assert [f["before"] for f in body["key_fields"]] == ["¥ 99.00", "1,204"]
    assert not any(f["changed"] for f in body["key_fields"])
    assert body["text"]["added"] == body["text"]["removed"] == 0


def test_price_changed(tmp_path: Path, operator) -> None:  # type: ignore[no-untyped-def]
    change = compare(previous_package(tmp_path, operator), current(dom=listing(price="¥ 79.00")), key_fields=FIELDS)
    body = change.to_json()
    assert change.classification == "changed"
    assert set(body["signals"]) == {"text", "key_fields"}
    price = body["key_fields"][0]
    assert (price["before"], price["after"], price["changed"]) == ("¥ 99.00", "¥ 79.00", True)
    assert body["text"]["excerpt"] == {"added": ["¥ 79.00"], "removed": ["¥ 99.00"]}
    assert body["screenshot"]["changed"] is False
    assert change.summary == "changed: price: ¥ 99.00 → ¥ 79.00; 1 line added, 1 removed"


def test_swapped_picture_is_a_visual_change(tmp_path: Path, operator) -> None:  # type: ignore[no-untyped-def]
    change = compare(previous_package(tmp_path, operator), current(picture="other"))
    shot = change.to_json()["screenshot"]
    assert shot["fraction"] > SCREENSHOT_CHANGED_FRACTION, shot
    assert change.classification == "changed" and change.to_json()["signals"] == ["screenshot"]


@pytest.mark.parametrize(("dom", "status", "reason"), [
    (NOT_FOUND, 404, "http-404"),
    (NOT_FOUND, 410, "http-410"),
    (NOTICE, 200, "notice"),
    ("<html><body>  \n </body></html>", 200, "empty"),
])
def test_removed(tmp_path: Path, operator, dom: str, status: int, reason: str) -> None:  # type: ignore[no-untyped-def]
    change = compare(previous_package(tmp_path, operator), current(dom=dom, status=status, picture="none"),
                     key_fields=FIELDS)
    body = change.to_json()
    assert change.classification == "removed"
    assert body["removed"]["after"]["reason"] == reason and body["removed"]["before"] is None
    assert body["key_fields"][0]["after"] is None
    assert change.summary.startswith("removed (")


def test_reappeared(tmp_path: Path, operator) -> None:  # type: ignore[no-untyped-def]
    gone = previous_package(tmp_path, operator, dom=NOT_FOUND, status=404, picture="none")
    change = compare(gone, current())
    assert change.classification == "reappeared"
    assert change.to_json()["removed"] == {"before": {"reason": "http-404", "phrase": None}, "after": None}


def test_a_phrase_in_a_long_live_page_is_not_a_removal() -> None:
    reviews = "".join(f"<p>评论 {i}：衣服很暖和，物流很快，推荐购买，尺码偏大一号。</p>" for i in range(80))
    text = page_text(listing(extra="<p>黑色 XXL no longer available</p>" + reviews))
    assert removal(200, text) is None
    assert removal(200, page_text(listing(extra="<p>黑色 XXL no longer available</p>"))) is not None


def test_change_json_is_canonical_and_names_the_previous(tmp_path: Path, operator) -> None:  # type: ignore[no-untyped-def]
    built = capture_like_package(tmp_path, operator, capture_files(screenshot(), listing()))
    change = compare(built.path, current(dom=listing(sales="1,300")))
    data = change.canonical_bytes()
    body = json.loads(data)
    assert data == canonical.canonical_json(body)
    assert body["format"] == CHANGE_FORMAT
    assert body["previous"]["fingerprint"] == built.fingerprint.hex()
    assert body["previous"]["evidence_id"] == built.evidence_id
    assert parse_change(data) == change


def test_page_strings_are_bounded(tmp_path: Path, operator) -> None:  # type: ignore[no-untyped-def]
    long_line = "侵" * 10_000
    change = compare(previous_package(tmp_path, operator),
                     current(dom=listing(price=long_line, extra=f"<title>{long_line}</title>")),
                     key_fields=FIELDS)
    body = change.to_json()
    assert all(len(line) <= MAX_STRING_CHARS for line in body["text"]["excerpt"]["added"])
    assert len(body["key_fields"][0]["after"]) == MAX_STRING_CHARS
    assert body["key_fields"][0]["after"].endswith("…")


def test_a_just_captured_folder(tmp_path: Path, operator) -> None:  # type: ignore[no-untyped-def]
    work = tmp_path / "work"
    work.mkdir()
    files = {}
    for name, data in capture_files(screenshot(), listing(price="¥ 89.00")).items():
        files[name] = work / name.replace("/", "__")
        files[name].write_bytes(data)
    now = CaptureFiles.from_files(files, http_status=200, final_url="https://shop.example/item/1?x=1")
    change = compare(previous_package(tmp_path, operator), now, key_fields=(PRICE,))
    assert change.classification == "changed"
    assert set(change.to_json()["signals"]) == {"final_url", "text", "key_fields"}


def test_two_packages(tmp_path: Path, operator) -> None:  # type: ignore[no-untyped-def]
    first = previous_package(tmp_path, operator)
    second = previous_package(tmp_path, operator, dom=NOTICE)
    assert compare(first, second).classification == "removed"
    assert compare(second, first).classification == "reappeared"


def test_a_damaged_previous_package_is_refused(tmp_path: Path, operator) -> None:  # type: ignore[no-untyped-def]
    good = previous_package(tmp_path, operator)
    forged = replace_sealed_entry(good, tmp_path / "forged.wacz", DOM_PATH, lambda d: d.replace(b"99", b"19"))
    with pytest.raises(ChangeError, match="not the file its manifest lists"):
        compare(forged, current())


def test_an_upload_is_not_a_previous_capture(workspace) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ChangeError, match="upload package, not a web capture"):
        compare(workspace.upload().path, current())


def test_missing_and_broken_screenshots_are_recorded(tmp_path: Path, operator) -> None:  # type: ignore[no-untyped-def]
    files = {DOM_PATH: listing().encode(), SOURCE_PATH: listing().encode(), SCREENSHOT_PATH: b"not a png"}
    previous = capture_like_package(tmp_path, operator, files).path
    shot = compare(previous, current()).to_json()["screenshot"]
    assert shot["compared"] is False and shot["missing"] == ["before"] and "PNG" in shot["errors"]["before"]


def test_key_fields_are_checked() -> None:
    with pytest.raises(FieldSpecError, match="not a CSS selector"):
        KeyField("price", "div[[")
    with pytest.raises(FieldSpecError, match="name"):
        KeyField("", ".price")


def test_hash_ignores_scale_noise_but_sees_layout() -> None:
    base = screenshot_hash(screenshot())
    assert base.distance(screenshot_hash(screenshot(noise=(10, 10)))) == 0
    assert base.distance(screenshot_hash(screenshot(picture="none"))) > 0


def test_an_oversized_page_is_left_out_and_said_so(tmp_path: Path, operator, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import evidence.change

    previous = previous_package(tmp_path, operator)
    monkeypatch.setattr(evidence.change, "MAX_HTML_BYTES", 100)
    body = compare(previous, current()).to_json()
    assert body["not_compared"]["before"] == [DOM_PATH, SOURCE_PATH] and body["text"] is None


def test_key_fields_from_a_watch() -> None:
    assert parse_key_fields([PRICE.to_json(), SALES.to_json()]) == FIELDS
    assert parse_key_fields({"price": ".price", "sales": "#sales span"}) == FIELDS
    bad_selector = [{"name": "p", "css_selector": "a[["}]
    for bad in ({"price": 5}, "price", [{"name": "x"}], [PRICE.to_json(), PRICE.to_json()], bad_selector):
        with pytest.raises(FieldSpecError):
            parse_key_fields(bad)
