"""The pages in a real browser (Playwright + Debian's Chromium) against `tiezheng serve` started here.

A rights owner signs in with a key, captures the local sample page (or uploads a file when capture
is not installed), watches it become sealed, previews it and downloads the certificate and the
package. Then anyone drops the good package and a tampered copy on /verify and reads the verdicts.
Screenshots go to $TIEZHENG_SCREENSHOTS when set (to look at them), else to the test's tmp folder.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.conftest import capture_available, start_server
from tests.api.server import Server
from tests.tamper import flip_byte, replace_entry

PHONE = {"width": 390, "height": 844}
SEAL_TIMEOUT_MS = 120_000

playwright_sync = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def web_server(anvil: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from start_server(tmp_path_factory.mktemp("service-web"), "sqlite")


@pytest.fixture()
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("TIEZHENG_SCREENSHOTS", tmp_path / "screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_owner_seals_and_court_verifies(web_server: Server, chromium: Any, sample_site: str, shots: Path,
                                        tmp_path: Path) -> None:
    key = web_server.new_tenant("Acme Rights")["api_key"]
    context = chromium.new_context(viewport=PHONE, accept_downloads=True, locale="en-US")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    # -- the rights owner ---------------------------------------------------------------------
    page.goto(f"{web_server.url}/app")
    page.fill("#api-key", "tzk_wrong")
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#login-error:not([hidden])")
    page.fill("#api-key", key)
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#dashboard:not([hidden])")
    captured = capture_available() is None
    if captured:
        page.fill("#urls", f"{sample_site}/index.html")
        page.fill("#capture-note", "listing seen on the sample shop")
        page.click("#capture-form button[type=submit]")
    else:
        exhibit = tmp_path / "exhibit.txt"
        exhibit.write_text("infringing copy\n")
        page.set_input_files("#files", str(exhibit))
        page.click("#upload-form button[type=submit]")
    page.wait_for_selector("#evidence-list li[data-status=pending], #evidence-list li[data-status=sealed]")
    page.screenshot(path=str(shots / "app-pending-phone.png"), full_page=True)
    page.wait_for_selector("#evidence-list li[data-status=sealed]", timeout=SEAL_TIMEOUT_MS)
    item = page.locator("#evidence-list li[data-status=sealed]").first  # re-resolved at each use
    page.screenshot(path=str(shots / "app-sealed-phone.png"), full_page=True)

    if captured:
        item.locator("[data-action=preview]").click()
        page.wait_for_selector("#preview-img[src^='blob:']")
        page.wait_for_function("document.getElementById('preview-img').naturalWidth > 0")
        page.screenshot(path=str(shots / "app-preview-phone.png"))
        page.click("#preview-dialog button")
    with page.expect_download() as certificate_download:
        item.locator("[data-action=certificate]").click()
    certificate = tmp_path / "certificate.pdf"
    certificate_download.value.save_as(certificate)
    assert certificate.read_bytes().startswith(b"%PDF"), certificate.read_bytes()[:200]
    with page.expect_download() as package_download:
        item.locator("[data-action=package]").click()
    good = tmp_path / "good.wacz"
    package_download.value.save_as(good)

    # -- a court, with the package --------------------------------------------------------------
    tampered = replace_entry(good, tmp_path / "tampered.wacz",
                             "evidence/source.html" if captured else "evidence/exhibit.txt", flip_byte)
    trust = tmp_path / "trust.toml"
    web_server.cli("trust", "export", str(trust))
    page.goto(f"{web_server.url}/verify")
    page.set_input_files("#tz-trust", str(trust))
    page.wait_for_selector("#tz-trust-status[data-sha256]")
    page.set_input_files("#tz-package", str(good))
    verdict = page.wait_for_selector("#tz-verdict[data-verdict]")
    assert verdict.get_attribute("data-verdict") == "verified (offline)", verdict.inner_text()
    assert page.query_selector("tr[data-check=H4][data-status=pass]")
    shown = page.inner_text("#tz-result")  # the legal bases in both languages, as verifier/legal_basis.py cites them
    assert "Huatai Yimei v. Shenzhen Daotong" in shown and "杭州华泰一媒文化传媒有限公司" in shown
    assert page.query_selector("#tz-proves li")
    page.screenshot(path=str(shots / "verify-good-phone.png"), full_page=True)

    _drop(page, "#tz-drop", tampered)  # a real drop event, as a person's drag-and-drop makes
    page.wait_for_selector("#tz-verdict[data-verdict=failed]")
    assert page.query_selector("tr[data-check=H1][data-status=fail]")
    assert not page.query_selector("#tz-proves")  # "what this proves" only when verified
    assert "H1" in page.inner_text("#tz-failed")  # a failed report says what failed and what it means
    page.screenshot(path=str(shots / "verify-tampered-phone.png"), full_page=True)

    # -- the same in Chinese, on a desktop-sized window -------------------------------------------
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{web_server.url}/verify?lang=zh")
    assert page.inner_text("#tz-verify h1") == "在浏览器中核验证据"
    page.set_input_files("#tz-trust", str(trust))
    page.wait_for_selector("#tz-trust-status[data-sha256]")
    page.set_input_files("#tz-package", str(good))
    page.wait_for_selector("#tz-verdict[data-verdict]")
    assert "验证通过" in page.inner_text("#tz-verdict")
    page.screenshot(path=str(shots / "verify-good-zh-desktop.png"), full_page=True)
    page.goto(f"{web_server.url}/app")  # the language is remembered, the key kept for this tab
    page.wait_for_selector("#dashboard:not([hidden]) #evidence-list li")
    assert "控制台" in page.inner_text("nav")
    page.screenshot(path=str(shots / "app-zh-desktop.png"), full_page=True)

    # -- the API docs render from this server alone ---------------------------------------------
    page.goto(f"{web_server.url}/docs")
    page.wait_for_selector(".opblock-summary-path[data-path='/v1/uploads']")
    page.screenshot(path=str(shots / "docs-desktop.png"))
    assert errors == []
    context.close()


def _drop(page: Any, selector: str, file: Path) -> None:
    data = base64.b64encode(file.read_bytes()).decode()
    transfer = page.evaluate_handle(
        """([data, name]) => {
            const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], name, { type: "application/zip" }));
            return transfer;
        }""", [data, file.name])
    page.dispatch_event(selector, "drop", {"dataTransfer": transfer})
