"""The certificate of a real web capture (samples/packages/good-capture.wacz): the hash of the file the
court was handed, the screenshot, the target table, the QR link, embedded fonts and the fill-in
certifications, read back with poppler's pdftotext, pdfimages and pdffonts and decoded with zxing."""

from __future__ import annotations

import hashlib
import html
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.capture_site import png
from tests.tamper import replace_entry
from verifier.errors import TrustError
from verifier.legal_basis import legal_basis
from verifier.report import exhibit as exhibit_module
from verifier.report import pdf_certificate
from verifier.report.exhibit import Exhibit, Screenshot, load_exhibit, png_size, target_rows, verification_link
from verifier.report.html_page import render_html
from verifier.report.pdf_certificate import write_pdf
from verifier.trust import load_trust
from verifier.verdict import Report
from verifier.verify import verify_package

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
CAPTURE = SAMPLES / "packages" / "good-capture.wacz"
TRUST = SAMPLES / "trust.toml"
CLI = str(Path(sys.executable).parent / "tiezheng-verify")
OPERATOR_URL = "https://evidence.example/tz"
#: What an absolute path of the verifier's machine looks like in extracted text.
ABSOLUTE_PATH = re.compile(r"(?<![\w.:/])/(?:home|tmp|root|usr|var|opt|srv|mnt|Users|work)/")

pytestmark = pytest.mark.skipif(shutil.which("pdftotext") is None, reason="needs poppler-utils")


def poppler(tool: str, *args: str | Path) -> str:
    return subprocess.run([tool, *map(str, args)], check=True, capture_output=True, text=True).stdout


@pytest.fixture(scope="module")
def report() -> Report:
    result = verify_package(CAPTURE, load_trust(TRUST))
    assert result.verified, result.to_json()
    return result


@pytest.fixture(scope="module")
def certificate(report: Report, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cert") / "certificate.pdf"
    # The package under its absolute path, as a user passes it: no folder of it may reach the PDF.
    write_pdf(report, out, source=str(CAPTURE), package=CAPTURE, verify_url=OPERATOR_URL)
    return out


def test_report_carries_the_sha256_of_the_package_file(report: Report) -> None:
    assert report.package_sha256 == hashlib.sha256(CAPTURE.read_bytes()).hexdigest()
    assert report.to_json()["package_sha256"] == report.package_sha256


def test_pdf_text_shows_package_hash_target_and_no_absolute_path(report: Report, certificate: Path) -> None:
    words = poppler("pdftotext", "-raw", certificate, "-")
    flat = re.sub(r"\s+", "", words)
    assert report.package_sha256 and report.package_sha256 in flat
    assert report.fingerprint and report.fingerprint in flat
    for label in ("Requested URL", "Final URL", "HTTP status", "Page title", "What was captured", "取证对象"):
        assert label in words
    assert "Spring Collection" in words and "good-capture.wacz" in words
    assert not ABSOLUTE_PATH.search(words), ABSOLUTE_PATH.search(words)
    assert str(CAPTURE.parent) not in words
    # Counted from 1: the first leaf of the batch is "evidence 1", never "leaf 0".
    index = report.facts["batch"]["leaf_index"]
    assert f"evidence {index + 1} of {report.facts['batch']['tree_size']}" in words and "leaf 0" not in words
    assert "(北京时间 UTC+8)" in words


def test_pdf_embeds_the_screenshot_and_every_font(certificate: Path) -> None:
    shot = load_exhibit(CAPTURE, verify_package(CAPTURE, load_trust(TRUST))).screenshot
    assert shot is not None
    images = poppler("pdfimages", "-list", certificate).splitlines()[2:]
    sizes = {(int(line.split()[3]), int(line.split()[4])) for line in images}
    assert (shot.width, shot.height) in sizes  # the screenshot itself, at full resolution
    pages_with_it = {line.split()[0] for line in images if (int(line.split()[3]), int(line.split()[4])) ==
                     (shot.width, shot.height)}
    assert "1" in pages_with_it and len(pages_with_it) >= 2  # first screen on page 1, full page after
    fonts = poppler("pdffonts", certificate).splitlines()[2:]
    assert fonts
    for line in fonts:
        assert line.split()[-5] == "yes", f"font not embedded: {line}"  # the emb column
        assert "Helvetica" not in line and "Courier" not in line


def test_screenshot_pages_carry_url_and_capture_time(report: Report, certificate: Path) -> None:
    pages = int(re.search(r"Pages:\s+(\d+)", poppler("pdfinfo", certificate)).group(1))  # type: ignore[union-attr]
    headed = [n for n in range(1, pages + 1)
              if "Screenshot, full page: part" in poppler("pdftotext", "-f", str(n), "-l", str(n), certificate, "-")]
    assert headed
    final_url = report.facts["target"]["final_url"]
    for number in headed:
        page = poppler("pdftotext", "-f", str(number), "-l", str(number), certificate, "-")
        assert final_url in page and "UTC+8" in page and "captured 取证于" in page


def test_qr_code_links_to_the_operator_verify_page(report: Report, certificate: Path, tmp_path: Path) -> None:
    zxingcpp = pytest.importorskip("zxingcpp")
    image = pytest.importorskip("PIL.Image")
    subprocess.run(["pdftoppm", "-png", "-r", "150", "-f", "1", "-l", "1", str(certificate), str(tmp_path / "p")],
                   check=True)
    decoded = zxingcpp.read_barcodes(image.open(next(tmp_path.glob("p*.png"))))
    link = f"{OPERATOR_URL}/verify?fingerprint={report.fingerprint}"
    assert [code.text for code in decoded] == [link]
    # The link is printed too, for a reader without a scanner.
    assert link in re.sub(r"\s+", "", poppler("pdftotext", "-raw", certificate, "-"))


def test_cli_takes_the_verify_url_from_the_trust_file(report: Report, tmp_path: Path) -> None:
    zxingcpp = pytest.importorskip("zxingcpp")
    image = pytest.importorskip("PIL.Image")
    trust = tmp_path / "trust.toml"
    trust.write_text(TRUST.read_text().replace("[[operators]]\n", f'[[operators]]\nverify_url = "{OPERATOR_URL}"\n'))
    result = subprocess.run([CLI, str(CAPTURE), "--trust", str(trust), "--pdf", str(tmp_path / "c.pdf"), "--json"],
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["package_sha256"] == report.package_sha256
    subprocess.run(["pdftoppm", "-png", "-r", "150", "-f", "1", "-l", "1", str(tmp_path / "c.pdf"),
                    str(tmp_path / "p")], check=True)
    decoded = zxingcpp.read_barcodes(image.open(next(tmp_path.glob("p*.png"))))
    assert [code.text for code in decoded] == [f"{OPERATOR_URL}/verify?fingerprint={report.fingerprint}"]


def test_certifications_are_appended_and_do_not_overclaim(report: Report, certificate: Path) -> None:
    words = poppler("pdftotext", "-raw", certificate, "-")
    flat = re.sub(r"\s+", "", words)
    for heading in ("Certification of Electronic Evidence", "902(13)", "902(14)", "1. Certifier",
                    "4. Tools and versions", "5. Hashes and algorithm", "6. Chain of custody",
                    "What they cannot prove", "penalty of perjury", "电子数据存证证明", "一、出具人",
                    "四、使用的工具及版本", "五、哈希值及算法", "六、保管链", "上述检查不能证明", "单位（盖章）"):
        assert heading in words, heading
    shown = load_exhibit(CAPTURE, report)
    assert shown.artifacts
    for _path, digest, _size in shown.artifacts:  # every evidence file's hash is listed for the certifier
        assert digest in flat
    assert "SHA-256(FIPS180-4)" in flat and "chromium" in words
    assert flat.count(report.package_sha256 or "?") >= 3  # certificate, FRE certification, Chinese statement


def test_html_shows_the_capture_self_contained(report: Report) -> None:
    page = render_html(report, source=str(CAPTURE), package=CAPTURE)
    assert report.package_sha256 and report.package_sha256 in page
    assert page.count('src="data:image/png;base64,') == 2  # first screen and the full page
    assert re.findall(r'src="(?!data:image/png;base64,)', page) == []
    assert "img-src data:" in page and "<script" not in page
    assert "Spring Collection" in page and "电子数据存证证明" in page and "Certification of Electronic Evidence" in page
    assert not ABSOLUTE_PATH.search(page.replace("https://", "").replace("http://", ""))


def test_a_screenshot_that_failed_h1_is_not_shown(tmp_path: Path) -> None:
    bad = replace_entry(CAPTURE, tmp_path / "bad.wacz", "evidence/screenshot.png", lambda _data: png(64, 64))
    report = verify_package(bad, load_trust(TRUST))
    assert report.result("H1").status.value == "fail"
    shown = load_exhibit(bad, report)
    assert shown.screenshot is None and shown.screenshot_note and "H1" in shown.screenshot_note
    out = tmp_path / "bad.pdf"
    write_pdf(report, out, source="bad.wacz", package=bad)
    assert "H1 did not show it to be the file that was sealed" in poppler("pdftotext", out, "-")
    assert "image" not in " ".join(line.split()[2] for line in poppler("pdfimages", "-list", out).splitlines()[3:])


def test_screenshot_over_the_pixel_cap_is_described_not_decoded(report: Report,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(exhibit_module, "MAX_SCREENSHOT_PIXELS", 1000)
    shown = load_exhibit(CAPTURE, report)
    assert shown.screenshot is None and shown.screenshot_note
    assert "larger than this document shows" in shown.screenshot_note


def test_png_size_trusts_only_a_plausible_header() -> None:
    assert png_size(png(3, 5)) == (3, 5)
    huge = bytearray(png(3, 5))
    huge[16:24] = (70_000).to_bytes(4, "big") * 2
    for bad in (b"GIF89a" + bytes(30), bytes(huge), b"\x89PNG\r\n\x1a\n"):
        with pytest.raises(ValueError):
            png_size(bad)


def test_a_tall_page_is_cut_into_numbered_pages(report: Report, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    tall = png(640, 9000, (40, 90, 160))
    shot = Screenshot(png=tall, width=640, height=9000, first_screen=400)
    monkeypatch.setattr(pdf_certificate, "load_exhibit", lambda _path, _report: Exhibit(screenshot=shot))
    out = tmp_path / "tall.pdf"
    write_pdf(report, out, source="tall.wacz", package=CAPTURE)
    words = poppler("pdftotext", out, "-")
    parts = re.findall(r"Screenshot, full page: part (\d+) of (\d+)", words)
    total = int(parts[0][1])
    assert total >= 3 and [int(n) for n, _ in parts] == list(range(1, total + 1))
    images = poppler("pdfimages", "-list", out).splitlines()[2:]
    # One image object, however many pages show a part of it.
    assert len({line.split()[10] for line in images if line.split()[3:5] == ["640", "9000"]}) == 1


def test_verification_link_accepts_only_plain_web_urls() -> None:
    fingerprint = "ab" * 32
    assert verification_link("https://op.example/", fingerprint) == f"https://op.example/verify?fingerprint={fingerprint}"
    for bad in ("javascript:alert(1)", "https://user:pw@op.example", "file:///etc/passwd", "", None, "op.example"):
        assert verification_link(bad, fingerprint) is None


def test_target_table_lists_redirects_counted_from_one(report: Report) -> None:
    facts = {**report.facts, "target": {"requested_url": "http://a.example/", "final_url": "https://b.example/x",
                                        "http_status": 200, "title": "X\u202eY",
                                        "redirects": [{"url": "http://a.example/", "status": 301,
                                                       "location": "https://b.example/"},
                                                      {"url": "https://b.example/", "status": 302,
                                                       "location": "/x"}]}}
    rows = target_rows(Report(checks=report.checks, facts=facts))
    labels = [en for en, _zh, _value in rows]
    assert labels == ["Requested URL", "Redirect 1", "Redirect 2", "Final URL", "HTTP status", "Page title"]
    assert rows[1][2] == "301 http://a.example/ → https://b.example/"
    assert "\u202e" not in rows[-1][2]  # a bidi override from the page is shown as its code


def test_only_a_verified_package_gets_certification_pages(tmp_path: Path) -> None:
    bad = SAMPLES / "packages" / "bad-H1-artifact-changed.wacz"
    report = verify_package(bad, load_trust(TRUST))
    assert not report.verified
    out = tmp_path / "failed.pdf"
    write_pdf(report, out, source=bad.name, package=bad)
    words = poppler("pdftotext", out, "-")
    assert "NOT VERIFIED" in words and "Certification of Electronic Evidence" not in words
    assert "电子数据存证证明" not in words and "penalty of perjury" not in words
    page = render_html(report, source=bad.name, package=bad)
    assert "电子数据存证证明" not in page and "Certification of Electronic Evidence" not in page


@pytest.mark.parametrize("url", ["javascript:alert(1)", "https://user:pw@evidence.example", "evidence.example"])
def test_cli_refuses_a_verify_url_that_is_not_a_plain_web_url(url: str, tmp_path: Path) -> None:
    result = subprocess.run([CLI, str(CAPTURE), "--trust", str(TRUST), "--pdf", str(tmp_path / "c.pdf"),
                             "--verify-url", url], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "--verify-url must be an http(s) URL" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "c.pdf").exists()


def test_trust_file_refuses_a_verify_url_that_is_not_a_plain_web_url(tmp_path: Path) -> None:
    trust = tmp_path / "trust.toml"
    trust.write_text(TRUST.read_text().replace("[[operators]]\n", '[[operators]]\nverify_url = "javascript:x"\n'))
    with pytest.raises(TrustError, match="verify_url 'javascript:x' is not an http"):
        load_trust(trust)


def test_an_undecodable_screenshot_is_named_not_fatal(report: Report, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    broken = png(40, 40)[:40] + b"\x00" * 30  # a sound IHDR, then no image data to speak of
    shot = Screenshot(png=broken, width=40, height=40, first_screen=40)
    monkeypatch.setattr(pdf_certificate, "load_exhibit", lambda _path, _report: Exhibit(screenshot=shot))
    out = tmp_path / "broken.pdf"
    write_pdf(report, out, source="broken.wacz", package=CAPTURE)
    words = poppler("pdftotext", out, "-")
    assert "the screenshot is not shown: the screenshot cannot be decoded" in " ".join(words.split())
    assert "Certification of Electronic Evidence" in words  # the rest of the certificate stands


#: One time in the court format: Beijing time first, UTC second, to the millisecond.
COURT_TIME = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} \(北京时间 UTC\+8\) / "
                        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} UTC")
#: Any date with a clock time, in whatever format: what remains once the court-format times are removed.
ANY_TIME = re.compile(r"\d{4}-\d\d-\d\d[ T]?\d\d:\d\d")


def assert_court_times_only(words: str) -> None:
    # A line may wrap between two Chinese characters ("北京 / 时间"); extraction makes that a space.
    flat = re.sub(r"(?<=[\u4e00-\u9fff])\s+(?=[\u4e00-\u9fff])", "", " ".join(words.split()))
    assert len(COURT_TIME.findall(flat)) >= 5  # issued, capture start and end, timestamp, block
    assert not ANY_TIME.search(COURT_TIME.sub("", flat)), ANY_TIME.search(COURT_TIME.sub("", flat))


def assert_bilingual_findings(report: Report, words: str) -> None:
    flat = re.sub(r"\s+", "", words)
    for result in report.checks:
        assert result.reason_zh, result.id
        assert re.sub(r"\s+", "", result.reason_zh) in flat, result.id
        assert re.sub(r"\s+", "", result.reason) in flat, result.id
        for lang in ("zh", "en"):
            assert re.sub(r"\s+", "", legal_basis(result.id, lang)) in flat, (result.id, lang)


def test_pdf_has_every_finding_and_basis_in_chinese_and_english(report: Report, certificate: Path) -> None:
    assert_bilingual_findings(report, poppler("pdftotext", "-raw", certificate, "-"))


def test_pdf_gives_every_time_in_beijing_time_and_utc(certificate: Path) -> None:
    words = poppler("pdftotext", "-raw", certificate, "-")
    assert_court_times_only(words)
    assert "after capture ended" in words and "取证结束后" in words  # durations in words


def html_words(page: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", re.sub(r"<(style|script)[^>]*>.*?</\1>", "", page, flags=re.S)))


def test_html_has_every_finding_basis_and_time_in_both_languages(report: Report) -> None:
    words = html_words(render_html(report, source=str(CAPTURE), package=CAPTURE))
    assert_bilingual_findings(report, words)
    assert_court_times_only(words)


def test_documents_in_one_language_when_asked(report: Report, tmp_path: Path) -> None:
    english = html_words(render_html(report, source="good-capture.wacz", lang="en"))
    chinese = html_words(render_html(report, source="good-capture.wacz", lang="zh"))
    for result in report.checks:
        assert result.reason in english and result.reason_zh not in english
        assert result.reason_zh in chinese and legal_basis(result.id, "en") not in chinese
    out = tmp_path / "zh.pdf"
    write_pdf(report, out, source="good-capture.wacz", lang="zh")
    flat = re.sub(r"\s+", "", poppler("pdftotext", "-raw", out, "-"))
    assert re.sub(r"\s+", "", report.result("H1").reason_zh) in flat
    assert re.sub(r"\s+", "", legal_basis("H1", "en")) not in flat


def test_cli_passes_lang_to_the_documents(tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    subprocess.run([CLI, str(CAPTURE), "--trust", str(TRUST), "--lang", "zh", "--html", str(page)],
                   check=True, capture_output=True, text=True)
    text = page.read_text(encoding="utf-8")
    assert "清单由受信任的运营方" in text and "manifest signed by trusted operator" not in text
    default = tmp_path / "both.html"
    subprocess.run([CLI, str(CAPTURE), "--trust", str(TRUST), "--html", str(default)],
                   check=True, capture_output=True, text=True)
    both = default.read_text(encoding="utf-8")
    assert "清单由受信任的运营方" in both and "manifest signed by trusted operator" in both


@pytest.mark.parametrize("width", [1280, 390])
def test_html_report_fits_the_screen_with_both_languages(report: Report, chromium: Any, width: int,
                                                         tmp_path: Path) -> None:
    page_file = tmp_path / "report.html"
    page_file.write_text(render_html(report, source=CAPTURE.name, package=CAPTURE), encoding="utf-8")
    tab = chromium.new_page(viewport={"width": width, "height": 900})
    tab.goto(page_file.as_uri())
    overflow = tab.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{overflow} px of horizontal scrolling at {width} px"
    assert "取证结束后" in tab.inner_text("ol.timeline")  # durations in words, in both languages
    tab.close()
