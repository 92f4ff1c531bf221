"""/verify checks a package in the reader's browser: no byte of it goes to the server or anywhere else.

The real service is started here and Debian's Chromium opens /verify. Every request the page makes
is recorded while the sample package is verified; none may carry the package's bytes, and the
page's CSP must forbid it any other destination. Screenshots (desktop 1280 px and phone 390 px,
English and Chinese) go to $TIEZHENG_SCREENSHOTS when set, else to the test's tmp folder.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.conftest import capture_available, start_server
from tests.api.server import Server, wait_for_status
from tests.tamper import replace_entry
from tests.verifier.browser_page import built_page, open_page
from tests.verifier.test_browser_parity import cli_report, mismatches

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
GOOD = SAMPLES / "packages" / "good-upload.wacz"
TRUST = SAMPLES / "trust.toml"
#: Any run of this many package bytes in a request body counts as the package leaving the browser.
WINDOW = 64


@pytest.fixture(scope="module")
def web_server(anvil: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    built_page()  # the service serves what `make setup` built
    yield from start_server(tmp_path_factory.mktemp("service-verify"), "sqlite")


def _carries(body: bytes, package: bytes) -> bool:
    return any(package[at:at + WINDOW] in body for at in range(0, len(package) - WINDOW, WINDOW))


def test_verify_page_uploads_nothing(web_server: Server, chromium: Any) -> None:
    package = GOOD.read_bytes()
    page = open_page(chromium, f"{web_server.url}/verify", viewport={"width": 1280, "height": 900})
    requests: list[tuple[str, str, bytes]] = []
    page.page.on("request", lambda r: requests.append((r.method, r.url, r.post_data_buffer or b"")))
    report = page.verify(GOOD, TRUST)
    assert report.verdict == "verified (offline)", report
    assert report.statuses["H4"] == "pass" and report.statuses["S1"] == "pass"
    leaving = [(method, url) for method, url, body in requests if method != "GET" or _carries(body, package)]
    assert leaving == [], leaving
    assert all(url.startswith(web_server.url) for _, url, _ in requests), requests
    # Even a script that tried could not send it elsewhere: the policy names this origin only.
    blocked = page.page.evaluate("""async () => {
        try { await fetch("http://example.invalid/", { method: "POST", body: "x" }); return "sent"; }
        catch (e) { return "blocked"; } }""")
    assert blocked == "blocked"


def test_verify_page_policy_and_download(web_server: Server) -> None:
    with httpx.Client(base_url=web_server.url) as client:
        response = client.get("/verify")
        csp = response.headers["content-security-policy"]
        assert "connect-src 'self';" in csp and "script-src 'self';" in csp and "'unsafe-inline'" not in csp
        opted = client.get("/verify", params={"rpc": "http://127.0.0.1:8545/path"}).headers["content-security-policy"]
        assert "connect-src 'self' http://127.0.0.1:8545;" in opted
        hostile = client.get("/verify", params={"rpc": "javascript:alert(1)"}).headers["content-security-policy"]
        assert "connect-src 'self';" in hostile
        download = client.get("/verify/tiezheng-verify.html")
        assert download.status_code == 200
        assert "attachment" in download.headers["content-disposition"]
        assert download.content == built_page().read_bytes()


@pytest.mark.parametrize(("lang", "width"), [("en", 1280), ("zh", 1280), ("en", 390), ("zh", 390)])
def test_verify_page_screenshots(web_server: Server, chromium: Any, lang: str, width: int, tmp_path: Path) -> None:
    folder = Path(os.environ.get("TIEZHENG_SCREENSHOTS", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    page = open_page(chromium, f"{web_server.url}/verify?lang={lang}", viewport={"width": width, "height": 900})
    report = page.verify(GOOD, TRUST)
    assert report.verdict == "verified (offline)"
    heading = page.page.inner_text("#tz-verify h1")
    assert heading == ("在浏览器中核验证据" if lang == "zh" else "Verify evidence in your browser")
    page.page.screenshot(path=str(folder / f"verify-inbrowser-{lang}-{width}.png"), full_page=True)
    overflow = page.page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{overflow} px of horizontal scrolling at {width} px"


def test_web_capture_agrees_with_cli(web_server: Server, chromium: Any, sample_site: str, tmp_path: Path) -> None:
    """A real capture of the sample site, sealed by the service: page and CLI agree check by check,
    including the web-capture checks (S3 network facts and WARC, P1 call log, P2 corroboration)."""
    reason = capture_available()
    if reason is not None:
        pytest.skip(f"web capture: {reason}")
    key = web_server.new_tenant("Parity Rights")["api_key"]
    with web_server.client(key) as client:
        accepted = client.post("/v1/captures", json={"urls": [f"{sample_site}/index.html"], "note": "parity"})
        assert accepted.status_code == 202, accepted.text
        done = wait_for_status(client, accepted.json()["evidence_ids"][0], {"sealed", "failed"}, timeout=180)
        assert done["status"] == "sealed", done.get("error")
        package = tmp_path / "capture.wacz"
        package.write_bytes(client.get(f"/v1/evidence/{done['id']}/package").content)
    trust = tmp_path / "trust.toml"
    web_server.cli("trust", "export", str(trust))
    broken_log = replace_entry(package, tmp_path / "broken-log.wacz", "evidence/capture-log.jsonl",
                               lambda data: data.replace(b'"actor":"system"', b'"actor":"someone"', 1))
    page = open_page(chromium, built_page().as_uri())
    problems: list[str] = []
    for name, path in (("capture", package), ("edited call log", broken_log)):
        problems += mismatches(name, cli_report(path, trust), page.verify(path, trust))
    assert problems == [], "\n".join(problems)
    assert page.verify(broken_log, trust).statuses["P1"] == "fail"


def test_page_loads_the_operators_published_trust(web_server: Server, chromium: Any) -> None:
    """One click loads /.well-known/tiezheng/trust.toml; the page shows the SHA-256 the service publishes."""
    published = httpx.get(f"{web_server.url}/.well-known/tiezheng/trust.toml", timeout=30)
    assert published.status_code == 200
    page = open_page(chromium, f"{web_server.url}/verify")
    page.page.click("#tz-operator-trust")
    page.page.wait_for_selector("#tz-trust-status[data-sha256]")
    shown = page.page.get_attribute("#tz-trust-status", "data-sha256")
    assert shown == hashlib.sha256(published.content).hexdigest() == page.page.inner_text("#trust-sha256")
    # The samples were sealed by another operator: with this trust the page cannot judge them.
    page.page.set_input_files("#tz-package", str(GOOD))
    assert page.page.wait_for_selector("#tz-verdict").get_attribute("data-verdict") == "cannot judge"
