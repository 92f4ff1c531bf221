"""The verification link end to end: TIEZHENG_PUBLIC_URL → the published and exported trust name the
operator's /verify page → the service's certificate carries it in its QR code → that page, opened with
?fingerprint=, says whether a dropped package is the evidence the link names.

Against the real service (`tiezheng serve`, SQLite) and Debian's Chromium; the QR code is read back
from the rendered certificate with zxing, as a phone would read it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.server import Server, wait_for_status
from tests.verifier.browser_page import built_page, open_page
from verifier.trust import load_trust, parse_trust

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
OTHER = SAMPLES / "packages" / "good-upload.wacz"
TRUST_PATH = "/.well-known/tiezheng/trust.toml"


@pytest.fixture(scope="module")
def service(anvil: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    built_page()  # the service serves what `make setup` built
    server = Server(data_dir=tmp_path_factory.mktemp("service-link") / "data")
    # Readers reach this service where it listens; a trailing slash is the operator's typing, not a path.
    server.extra_env["TIEZHENG_PUBLIC_URL"] = f"{server.url}/"
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
def sealed(service: Server, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One upload, sealed: its package and its certificate, as the service hands them out."""
    folder = tmp_path_factory.mktemp("sealed-link")
    key = service.new_tenant("Link Rights")["api_key"]
    with service.client(key) as client:
        reply = client.post("/v1/uploads", files=[("file", ("listing.txt", b"listing for the link\n", "text/plain"))])
        assert reply.status_code == 202, reply.text
        done = wait_for_status(client, reply.json()["evidence_ids"][0], {"sealed"})
        package = folder / "listing.wacz"
        package.write_bytes(client.get(f"/v1/evidence/{done['id']}/package").content)
        certificate = client.get(f"/v1/evidence/{done['id']}/certificate.pdf")
    if certificate.status_code == 501:
        pytest.skip("the service has no PDF renderer (pip install 'tiezheng[pdf]')")
    assert certificate.status_code == 200, certificate.text
    pdf = folder / "certificate.pdf"
    pdf.write_bytes(certificate.content)
    return {"fingerprint": done["fingerprint"], "package": package, "certificate": pdf}


def test_published_and_exported_trust_name_the_verify_page(service: Server, tmp_path: Path) -> None:
    published = httpx.get(f"{service.url}{TRUST_PATH}", timeout=30)
    assert published.status_code == 200
    (operator,) = parse_trust(published.text, source="published").operators
    assert operator.verify_url == f"{service.url}/verify"
    exported = tmp_path / "trust.toml"
    service.cli("trust", "export", str(exported))
    assert [o.verify_url for o in load_trust(exported).operators] == [f"{service.url}/verify"]
    assert exported.read_text(encoding="utf-8") == published.text


def test_an_unusable_public_url_is_refused_in_one_line(tmp_path: Path) -> None:
    server = Server(data_dir=tmp_path / "data", extra_env={"TIEZHENG_PUBLIC_URL": "javascript:alert(1)"})
    result = server.cli("trust", "export", str(tmp_path / "trust.toml"), check=False)
    assert result.returncode != 0 and "Traceback" not in result.stdout + result.stderr
    assert "public_url must be an http(s) URL" in result.stdout + result.stderr


def test_service_certificate_qr_code_links_to_the_verify_page(service: Server, sealed: dict[str, Any],
                                                              tmp_path: Path) -> None:
    zxingcpp = pytest.importorskip("zxingcpp")
    image = pytest.importorskip("PIL.Image")
    if shutil.which("pdftoppm") is None:
        pytest.skip("needs poppler-utils")
    link = f"{service.url}/verify?fingerprint={sealed['fingerprint']}"
    subprocess.run(["pdftoppm", "-png", "-r", "150", "-f", "1", "-l", "1", str(sealed["certificate"]),
                    str(tmp_path / "p")], check=True)
    decoded = zxingcpp.read_barcodes(image.open(next(tmp_path.glob("p*.png"))))
    assert [code.text for code in decoded] == [link]
    words = subprocess.run(["pdftotext", "-raw", str(sealed["certificate"]), "-"], check=True, capture_output=True,
                           text=True).stdout
    assert link in re.sub(r"\s+", "", words)  # printed too, for a reader without a scanner


def _open_link(browser: Any, url: str, width: int = 1280) -> Any:
    page = open_page(browser, url, viewport={"width": width, "height": 900})
    page.page.click("#tz-operator-trust")
    page.page.wait_for_selector("#tz-trust-status[data-sha256]")
    return page


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_verify_page_says_whether_the_package_matches_the_link(service: Server, sealed: dict[str, Any],
                                                               chromium: Any, lang: str, tmp_path: Path) -> None:
    fingerprint = sealed["fingerprint"]
    # As a scanner opens it (upper-case hex is the same value).
    page = _open_link(chromium, f"{service.url}/verify?lang={lang}&fingerprint={fingerprint.upper()}")
    assert page.page.get_attribute("#tz-expected", "data-fingerprint") == fingerprint
    assert fingerprint in page.page.inner_text("#tz-expected")

    report = page.verify(sealed["package"])
    assert report.verdict == "verified (offline)", report
    match = page.page.wait_for_selector("#tz-fingerprint-match")
    assert match.get_attribute("data-match") == "yes"
    said = match.inner_text()
    assert ("一致：" in said) if lang == "zh" else said.startswith("Match:")
    page.page.screenshot(path=str(tmp_path / f"link-match-{lang}.png"), full_page=True)

    other = page.verify(OTHER)  # a sound package, but not the evidence the link names
    assert other.verdict != "unusable"
    mismatch = page.page.wait_for_selector("#tz-fingerprint-match")
    assert mismatch.get_attribute("data-match") == "no"
    said = mismatch.inner_text()
    assert ("不一致：" in said) if lang == "zh" else said.startswith("No match:")
    assert fingerprint in said


def test_verify_page_refuses_a_link_fingerprint_that_is_not_sha256(service: Server, sealed: dict[str, Any],
                                                                    chromium: Any) -> None:
    page = _open_link(chromium, f"{service.url}/verify?fingerprint=<b>abc</b>")
    shown = page.page.inner_text("#tz-expected")
    assert "not a SHA-256 value" in shown and "<b>abc</b>" in shown  # as text, never as markup
    assert page.page.query_selector("#tz-expected b") is None
    page.verify(sealed["package"])
    assert page.page.query_selector("#tz-fingerprint-match") is None  # nothing to compare with


def test_verify_page_names_the_expected_fingerprint_without_script(service: Server) -> None:
    """Scripts off: the server-rendered page still shows the link's fingerprint, escaped."""
    reply = httpx.get(f"{service.url}/verify", params={"fingerprint": "<script>x</script>"}, timeout=30)
    assert reply.status_code == 200
    assert "&lt;script&gt;x&lt;/script&gt;" in reply.text and "<script>x</script>" not in reply.text
    plain = httpx.get(f"{service.url}/verify", params={"fingerprint": "ab" * 32}, timeout=30).text
    assert "Expected fingerprint (from the link)" in plain and "ab" * 32 in plain
