"""Real captures of a real local site with the real browser: what each package holds, and that
independent checkers (``wacz validate``, ``warcio check``) and our verifier accept it."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import struct
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from evidence.capture import CaptureError, WarmCapturer, capture_many, capture_urls, read_url_file
from evidence.capture_errors import BlockedAddress
from evidence.capture_options import CaptureOptions
from evidence.operator_key import OperatorKey
from tests.capture_site import (
    DYNAMIC,
    EXACT_RESPONSE,
    GZIP_PAGE,
    REQUESTER,
    BrowserRunner,
    Site,
    TlsMaterial,
    machine_s4_status,
    member,
    statuses,
    verify,
    wacz_validate,
    warcio_check,
)
from verifier.http_body import parse_response
from verifier.warc_reader import iter_warc

CAPTURE_CHECKS = ("P1", "P2", "P3", "H1")


def _manifest(package: Path) -> dict[str, Any]:
    return json.loads(member(package, "evidence/manifest.json"))


def _network(package: Path) -> dict[str, Any]:
    return json.loads(member(package, "evidence/network.json"))


def _responses(package: Path) -> list[tuple[dict[str, str], bytes]]:
    stream = io.BytesIO(member(package, "archive/data.warc.gz"))
    return [(dict(r.headers), r.block or b"") for r in iter_warc(stream, want_block=lambda h: True)
            if r.type == "response"]


def _assert_good(package: Path, trust: Path, *, s3: str) -> dict[str, str]:
    validated = wacz_validate(package)
    assert validated.returncode == 0 and "is valid" in validated.stdout, validated.stdout + validated.stderr
    checked = warcio_check(package)
    assert checked.returncode == 0 and "digest pass" in checked.stdout, checked.stdout + checked.stderr
    report = verify(package, trust)
    found = statuses(report)
    assert {i: found[i] for i in CAPTURE_CHECKS} == dict.fromkeys(CAPTURE_CHECKS, "pass"), report.checks
    assert found["S4"] == machine_s4_status(), report.result("S4")
    assert found["S3"] == s3, report.result("S3")
    assert found["S1"] == "pass" and found["S2"] == "pass"
    return found


def test_http_capture_records_every_view(runner: BrowserRunner, http_site: Site, operator: OperatorKey,
                                         trust: Path, packages: Path) -> None:
    url = http_site.url("/dynamic")
    built = runner.capture(url, packages, operator)
    assert built.path.parent == packages and built.path.name == f"{built.evidence_id}.wacz"
    _assert_good(built.path, trust, s3="warn")
    # The curl view is the page exactly as served; the DOM is the page after its script ran.
    assert member(built.path, "evidence/source.html") == DYNAMIC
    dom = member(built.path, "evidence/dom.html").decode()
    assert "Rendered by script after load" in dom and "Loading stock level" not in dom
    shot = member(built.path, "evidence/screenshot.png")
    assert shot.startswith(b"\x89PNG\r\n\x1a\n")
    manifest = _manifest(built.path)
    assert manifest["kind"] == "web-capture"
    assert manifest["target"]["requested_url"] == url and manifest["target"]["final_url"] == url
    capture = manifest["capture"]
    assert capture["started_at"].endswith("Z") and len(capture["started_at"]) == len("2026-01-01T00:00:00.000000Z")
    assert capture["browser"]["fresh_profile"] is True
    assert capture["browser"]["proxy"]["kind"] == "tiezheng-recorder"
    assert capture["browser"]["proxy"]["third_party_proxy"] is False
    assert any(f.startswith("--ignore-certificate-errors-spki-list=") for f in capture["browser"]["flags"])
    assert {t["name"] for t in capture["tools"]} >= {"tiezheng-capture", "chromium", "playwright", "httpx", "python"}
    # Every browser request went through the recorder: the page and its image, with the origin's IP.
    urls = {h["warc-target-uri"]: h for h, _ in _responses(built.path)}
    assert url in urls and http_site.url("/img/a.png") in urls
    assert all(h["warc-ip-address"] == "127.0.0.1" and h["warc-payload-digest"] for h in urls.values())
    log = [json.loads(line) for line in member(built.path, "evidence/capture-log.jsonl").splitlines()]
    assert [line["step"] for line in log] == ["environment-check", "start", "resolve", "fetch", "robots",
                                             "video-start", "navigate", "wait", "screenshot", "dom", "warc", "media",
                                             "network", "index", "video", "package"]
    assert all(line["actor"] == "system" for line in log)
    robots = _network(built.path)["robots"]
    assert robots["status"] == 200 and robots["obeyed"] is False and robots["allows_page"] is True


def test_https_capture_with_trusted_ca_passes_s3(runner: BrowserRunner, https_site: Site, tls_material: TlsMaterial,
                                                 operator: OperatorKey, trust: Path, packages: Path) -> None:
    built = runner.capture(https_site.url("/dynamic"), packages, operator, extra_ca_pem=tls_material.ca_pem)
    found = _assert_good(built.path, trust, s3="pass")
    assert found["S3"] == "pass"
    hop = _network(built.path)["fetch"]["hops"][-1]
    assert base64.b64decode(hop["tls"]["leaf_der_b64"]) == tls_material.leaf_der
    assert hop["tls"]["leaf_sha256"] == hashlib.sha256(tls_material.leaf_der).hexdigest()
    assert hop["tls"]["verified"] is True and hop["tls"]["protocol"].startswith("TLSv1.")
    main = _network(built.path)["browser"]["main_document"]
    # The browser's TLS peer is the recorder; the origin's certificate is what the recorder saw upstream.
    assert main["upstream"]["tls"]["leaf_sha256"] == hop["tls"]["leaf_sha256"]
    assert main["browser_security_details"]["subjectName"] == "127.0.0.1"


def test_self_signed_tls_fails_unless_allowed(runner: BrowserRunner, self_signed_site: Site,
                                              operator: OperatorKey, trust: Path, packages: Path) -> None:
    with pytest.raises(CaptureError, match=r"TLS certificate of 127\.0\.0\.1 is not trusted"):
        runner.capture(self_signed_site.url("/dynamic"), packages, operator)
    built = runner.capture(self_signed_site.url("/dynamic"), packages, operator, allow_untrusted_tls=True)
    _assert_good(built.path, trust, s3="warn")
    assert "did not trust its chain" in verify(built.path, trust).result("S3").reason
    assert _network(built.path)["fetch"]["hops"][-1]["tls"]["verified"] is False


def test_redirect_chain_is_followed_and_recorded(runner: BrowserRunner, http_site: Site, operator: OperatorKey,
                                                  trust: Path, packages: Path) -> None:
    built = runner.capture(http_site.url("/r1"), packages, operator)
    _assert_good(built.path, trust, s3="warn")
    target = _manifest(built.path)["target"]
    assert target["final_url"] == http_site.url("/dynamic")
    assert [(r["url"], r["status"]) for r in target["redirects"]] == [(http_site.url("/r1"), 301),
                                                                      (http_site.url("/r2"), 302)]
    assert _network(built.path)["browser"]["redirects"] == [http_site.url("/r1"), http_site.url("/r2")]


def test_gzip_chunked_body_is_kept_raw_and_decoded_for_source(runner: BrowserRunner, http_site: Site,
                                                              operator: OperatorKey, trust: Path,
                                                              packages: Path) -> None:
    built = runner.capture(http_site.url("/gzip"), packages, operator)
    _assert_good(built.path, trust, s3="warn")
    assert member(built.path, "evidence/source.html") == GZIP_PAGE
    encoding = _manifest(built.path)["capture"]["content_encoding"]
    assert encoding["transfer_coding"] == "chunked" and encoding["removed"] == ["gzip"]
    blocks = [b for h, b in _responses(built.path) if h["warc-target-uri"] == http_site.url("/gzip")]
    assert len(blocks) == 2  # the raw fetch and the browser
    for block in blocks:
        response = parse_response(block)
        assert response.header("transfer-encoding") == "chunked"
        assert response.body.split(b"\r\n", 2)[1].startswith(b"\x1f\x8b")  # gzip bytes, still chunked


def test_wire_bytes_are_recorded_exactly(runner: BrowserRunner, http_site: Site, operator: OperatorKey,
                                         trust: Path, packages: Path) -> None:
    built = runner.capture(http_site.url("/exact"), packages, operator)
    _assert_good(built.path, trust, s3="warn")
    blocks = [b for h, b in _responses(built.path) if h["warc-target-uri"] == http_site.url("/exact")]
    assert blocks == [EXACT_RESPONSE, EXACT_RESPONSE]


def test_lazy_images_and_iframes_are_captured(runner: BrowserRunner, http_site: Site, operator: OperatorKey,
                                              trust: Path, packages: Path) -> None:
    lazy = runner.capture(http_site.url("/lazy"), packages, operator)
    _assert_good(lazy.path, trust, s3="warn")
    assert http_site.url("/img/lazy-bottom.png") in {h["warc-target-uri"] for h, _ in _responses(lazy.path)}
    width, height = struct.unpack(">II", member(lazy.path, "evidence/screenshot.png")[16:24])
    assert width == 1280 and height > 4000  # full page by default
    framed = runner.capture(http_site.url("/iframe"), packages, operator)
    _assert_good(framed.path, trust, s3="warn")
    uris = {h["warc-target-uri"] for h, _ in _responses(framed.path)}
    assert {http_site.url("/framed"), http_site.url("/img/in-frame.png")} <= uris


def test_slow_page_fixed_wait_and_viewport_screenshot(runner: BrowserRunner, http_site: Site, operator: OperatorKey,
                                                      trust: Path, packages: Path) -> None:
    built = runner.capture(http_site.url("/slow"), packages, operator, wait=0.2, full_page=False,
                           viewport=(800, 600), scroll=False)
    _assert_good(built.path, trust, s3="warn")
    assert struct.unpack(">II", member(built.path, "evidence/screenshot.png")[16:24]) == (800, 600)
    wait = next(line for line in map(json.loads, member(built.path, "evidence/capture-log.jsonl").splitlines())
                if line["step"] == "wait")
    assert wait["step"] == "wait" and wait["outcome"]["waited_seconds"] == 0.2


def test_error_status_fails_unless_asked(runner: BrowserRunner, http_site: Site, operator: OperatorKey,
                                         trust: Path, packages: Path) -> None:
    with pytest.raises(CaptureError, match=r"answered HTTP 404 Not Found"):
        runner.capture(http_site.url("/missing"), packages, operator)
    built = runner.capture(http_site.url("/missing"), packages, operator, accept_error_status=True)
    _assert_good(built.path, trust, s3="warn")
    assert _manifest(built.path)["target"]["http_status"] == 404
    assert b"No such listing" in member(built.path, "evidence/dom.html")


def test_private_addresses_are_refused_by_default(runner: BrowserRunner, http_site: Site, operator: OperatorKey,
                                                  packages: Path) -> None:
    with pytest.raises(BlockedAddress, match=r"localhost resolves to 127\.0\.0\.1, which is a loopback address"):
        runner.capture(http_site.url("/dynamic", host="localhost"), packages, operator, allow_private=False)
    with pytest.raises(BlockedAddress, match=r"127\.0\.0\.1 is a loopback address"):
        runner.capture(http_site.url("/dynamic"), packages, operator, allow_private=False)
    # A redirect is checked again: 0.0.0.0 stays refused even with allow_private.
    with pytest.raises(BlockedAddress, match=r"0\.0\.0\.0 is an unspecified address"):
        runner.capture(http_site.url("/to-unspecified"), packages, operator)
    assert not packages.exists() or not list(packages.iterdir())


def test_browser_subrequests_are_checked_too(runner: BrowserRunner, http_site: Site, operator: OperatorKey,
                                             trust: Path, packages: Path) -> None:
    built = runner.capture(http_site.url("/blocked-sub"), packages, operator)
    _assert_good(built.path, trust, s3="warn")
    refused = _network(built.path)["traffic"]["refused"]
    assert any(r["url"].startswith("http://0.0.0.0:") and "unspecified" in r["reason"] for r in refused)
    assert not any(h["warc-target-uri"].startswith("http://0.0.0.0") for h, _ in _responses(built.path))


def test_localhost_by_name_with_allow_private(runner: BrowserRunner, http_site: Site, operator: OperatorKey,
                                              trust: Path, packages: Path) -> None:
    built = runner.capture(http_site.url("/dynamic", host="localhost"), packages, operator)
    _assert_good(built.path, trust, s3="warn")
    dns = {d["host"]: d for d in _network(built.path)["dns"]}
    assert dns["localhost"]["answers"]["A"] == ["127.0.0.1"] and dns["localhost"]["source"] == "system"


@pytest.mark.parametrize(("url", "message"), [
    ("http://127.0.0.1:1/", r"cannot connect to 127\.0\.0\.1:1"),
    ("http://no-such-host.invalid/", r"cannot resolve no-such-host\.invalid"),
    ("ftp://example.com/file", r"only http and https URLs"),
    ("http://user:pw@example.com/", r"credentials"),
])
def test_unusable_urls_give_one_line_errors(runner: BrowserRunner, operator: OperatorKey, packages: Path, url: str,
                                            message: str) -> None:
    with pytest.raises(CaptureError, match=message) as caught:
        runner.capture(url, packages, operator)
    assert "\n" not in str(caught.value)


def test_page_that_never_settles_fails_clearly(runner: BrowserRunner, http_site: Site, operator: OperatorKey,
                                               packages: Path) -> None:
    with pytest.raises(CaptureError, match=r"did not settle \(no network idle\) within 3 s"):
        runner.capture(http_site.url("/never"), packages, operator, timeout=3)


def test_batch_file_runs_captures_concurrently(runner: BrowserRunner, http_site: Site, operator: OperatorKey,
                                               trust: Path, packages: Path, tmp_path: Path) -> None:
    batch = tmp_path / "urls.txt"
    batch.write_text(f"# evidence batch\n{http_site.url('/dynamic')}\n\n{http_site.url('/missing')}\n"
                     f"  {http_site.url('/iframe')}  \n")
    urls = read_url_file(batch)
    assert len(urls) == 3
    results = runner.run(capture_many(urls, packages_dir=packages, operator=operator, requester=REQUESTER,
                                      options=CaptureOptions(allow_private=True, concurrency=3),
                                      browser=runner.browser, clock_references=runner.clock_references))
    assert [r.url for r in results] == urls
    assert [r.ok for r in results] == [True, False, True]
    assert "HTTP 404" in (results[1].error or "")
    assert results[0].record()["status"] == "captured" and results[1].record()["status"] == "failed"
    ids = {r.package.evidence_id for r in results if r.package}
    assert len(ids) == 2 and {p.stem for p in packages.iterdir()} == ids
    for result in results:
        if result.package:
            _assert_good(result.package.path, trust, s3="warn")


def test_bad_options_are_refused(runner: BrowserRunner, http_site: Site, operator: OperatorKey,
                                 packages: Path) -> None:
    with pytest.raises(CaptureError, match="wait must be"):
        runner.capture(http_site.url("/dynamic"), packages, operator, wait="forever")



def test_sync_entry_points(http_site: Site, operator: OperatorKey, trust: Path, packages: Path) -> None:
    """capture_urls launches a browser of its own; WarmCapturer keeps one for callers on many threads."""
    options = CaptureOptions(allow_private=True)
    [cold] = capture_urls([http_site.url("/dynamic")], packages_dir=packages, operator=operator, requester=REQUESTER,
                          options=options)
    assert cold.ok and statuses(verify(cold.package.path, trust))["P2"] == "pass"  # type: ignore[union-attr]
    with WarmCapturer() as capturer, ThreadPoolExecutor(2) as pool:
        batches = list(pool.map(lambda path: capturer.capture_urls(
            [http_site.url(path)], packages_dir=packages, operator=operator, requester=REQUESTER, options=options),
            ["/dynamic", "/missing"]))
    assert batches[0][0].ok and not batches[1][0].ok and "HTTP 404" in (batches[1][0].error or "")


def test_fragment_and_case_are_normalised_like_the_browser(runner: BrowserRunner, http_site: Site,
                                                           operator: OperatorKey, trust: Path, packages: Path) -> None:
    requested = f"HTTP://127.0.0.1:{http_site.port}/dynamic#stock"
    built = runner.capture(requested, packages, operator)
    _assert_good(built.path, trust, s3="warn")
    target = _manifest(built.path)["target"]
    assert target["requested_url"] == requested and target["final_url"] == http_site.url("/dynamic")
    reason = verify(built.path, trust).result("P2").reason
    assert "name the same page" in reason and "moved by script" not in reason
