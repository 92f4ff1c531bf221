"""Embedded media: a real page with large pictures and a video, captured with the real browser.

Every image and video response is indexed with the sha256 of the bytes served; ``save_media`` also
stores each at full resolution; P2 re-derives every item from the WARC and fails a tampered index.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from evidence.operator_key import OperatorKey
from tests.capture_site import BrowserRunner, member, statuses, verify, wacz_validate
from tests.member_site import MemberSite, serve_member_site
from tests.tamper import replace_entry
from verifier.media_index import MEDIA_INDEX_PATH


@pytest.fixture(scope="module")
def member_site() -> Iterator[MemberSite]:
    site = serve_member_site()
    yield site
    site.close()


def _index(package: Path) -> dict:  # type: ignore[type-arg]
    return json.loads(member(package, MEDIA_INDEX_PATH))


def test_media_are_indexed_with_the_served_bytes(runner: BrowserRunner, member_site: MemberSite,
                                                 operator: OperatorKey, trust: Path, packages: Path) -> None:
    built = runner.capture(member_site.url("/gallery"), packages, operator)
    items = {item["url"]: item for item in _index(built.path)["items"]}
    served = member_site.server.media.files
    for path, (body, media_type) in served.items():
        item = items[member_site.url(path)]
        assert item["sha256"] == hashlib.sha256(body).hexdigest() and item["size"] == len(body)
        assert item["media_type"] == media_type and item["warc_record_id"].startswith("<urn:uuid:")
        assert item["saved_as"] is None
    assert not any(name.startswith("media/") for name in zipfile.ZipFile(built.path).namelist())
    report = verify(built.path, trust)
    assert statuses(report)["P2"] == "pass", report.result("P2")
    assert "3 embedded media match their WARC payloads" in report.result("P2").reason


def test_save_media_stores_each_file_at_full_resolution(runner: BrowserRunner, member_site: MemberSite,
                                                        operator: OperatorKey, trust: Path, packages: Path) -> None:
    built = runner.capture(member_site.url("/gallery"), packages, operator, save_media=True)
    manifest = json.loads(member(built.path, "evidence/manifest.json"))
    listed = {a["path"]: a for a in manifest["artifacts"]}
    for body, _ in member_site.server.media.files.values():
        digest = hashlib.sha256(body).hexdigest()
        [path] = [p for p in listed if p.startswith(f"media/{digest}.")]
        assert member(built.path, path) == body and listed[path]["role"] == "media"
    assert {p.rsplit(".", 1)[1] for p in listed if p.startswith("media/")} == {"jpg", "png", "webm"}
    validated = wacz_validate(built.path)
    assert validated.returncode == 0, validated.stdout + validated.stderr
    report = verify(built.path, trust)
    found = statuses(report)
    assert {found[i] for i in ("P1", "P2", "P3", "H1")} == {"pass"}, report.checks
    assert "3 saved medium files match the index" in report.result("P2").reason


def test_p2_fails_an_index_that_disagrees_with_the_warc(runner: BrowserRunner, member_site: MemberSite,
                                                       operator: OperatorKey, trust: Path, packages: Path,
                                                       tmp_path: Path) -> None:
    built = runner.capture(member_site.url("/gallery"), packages, operator)
    index = _index(built.path)
    index["items"][0]["sha256"] = "0" * 64
    # H1 and P2's logged hash see the swapped file too; P2 also says what is wrong with it.
    tampered = replace_entry(built.path, tmp_path / "tampered.wacz", MEDIA_INDEX_PATH,
                             lambda _old: json.dumps(index).encode())
    report = verify(tampered, trust)
    assert statuses(report)["P2"] == "fail"
    assert "its WARC payload is" in report.result("P2").reason


def test_reports_list_the_media_with_thumbnails(runner: BrowserRunner, member_site: MemberSite,
                                                operator: OperatorKey, trust: Path, packages: Path,
                                                tmp_path: Path) -> None:
    import io
    import subprocess

    from rich.console import Console

    from verifier.report.html_page import render_html
    from verifier.report.pdf_certificate import render_pdf
    from verifier.report.terminal import render_report

    built = runner.capture(member_site.url("/gallery"), packages, operator)
    report = verify(built.path, trust)
    jpeg = hashlib.sha256(member_site.server.media.files["/media/big.jpg"][0]).hexdigest()
    page = render_html(report, source=built.path.name, package=built.path)
    assert "Embedded media" in page and jpeg in page and member_site.url("/media/clip.webm") in page
    # Thumbnails of both pictures (from the WARC payloads: nothing was saved separately), none of the video.
    assert page.count('alt="thumbnail / 缩略图"') == 2
    out = io.StringIO()
    Console(file=out, width=100).print(render_report(report, source=built.path.name))
    assert "EMBEDDED MEDIA (3)" in out.getvalue() and jpeg[:16] in out.getvalue()
    pdf = tmp_path / "certificate.pdf"
    pdf.write_bytes(render_pdf(report, source=built.path.name, package=built.path))
    shown = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    assert "Embedded media" in shown and jpeg[:32] in shown.replace("\n", "")
    images = subprocess.run(["pdfimages", "-list", str(pdf)], capture_output=True, text=True, check=True).stdout
    widths = [int(line.split()[3]) for line in images.splitlines()[2:] if line.strip()]
    assert widths.count(160) >= 2, images  # the two pictures' thumbnails (the screenshot is wider)


def test_media_strings_from_the_package_are_escaped() -> None:
    from verifier.report.exhibit import Exhibit
    from verifier.report.html_exhibit import media_section
    from verifier.report.media_exhibit import MediaEntry, MediaList

    entry = MediaEntry(url="http://x/<script>alert(1)</script>", media_type="image/png\x1b[2J", size=3,
                       sha256="a" * 64, saved_as=None)
    html = media_section(Exhibit(media=MediaList(entries=(entry,))))
    assert "<script>" not in html and "&lt;script&gt;" in html and "\x1b" not in html
