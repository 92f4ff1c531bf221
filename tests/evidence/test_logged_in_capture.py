"""A logged-in capture of a real local site behind a login cookie, with the real browser.

Without the session the capture gets the login page; with it, the members' page. The session's
cookie and local storage never enter the package (the WARC request records carry a hash in their
place), the manifest states the account and the storage state's hash, and S4 warns.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from evidence.browser_session import BrowserSession, redact_request_head
from evidence.capture_errors import CaptureError
from evidence.operator_key import OperatorKey
from tests.capture_site import BrowserRunner, member, statuses, verify, wacz_validate, warcio_check
from tests.member_site import (
    ACCOUNT,
    LOGIN_TEXT,
    MEMBERS_TEXT,
    SESSION_ID,
    MemberSite,
    serve_member_site,
    storage_state,
)
from verifier.warc_reader import iter_warc


@pytest.fixture(scope="module")
def member_site() -> Iterator[MemberSite]:
    site = serve_member_site()
    yield site
    site.close()


def _all_bytes(package: Path) -> bytes:
    import zipfile

    with zipfile.ZipFile(package) as archive:
        return b"".join(archive.read(name) for name in archive.namelist())


def _requests(package: Path) -> list[bytes]:
    import io

    with io.BytesIO(member(package, "archive/data.warc.gz")) as stream:
        return [r.block or b"" for r in iter_warc(stream, want_block=lambda h: h.get("warc-type") == "request")
                if r.type == "request"]


def test_without_session_the_capture_gets_the_login_page(runner: BrowserRunner, member_site: MemberSite,
                                                          operator: OperatorKey, packages: Path) -> None:
    built = runner.capture(member_site.url("/members"), packages, operator)
    manifest = json.loads(member(built.path, "evidence/manifest.json"))
    assert manifest["target"]["final_url"] == member_site.url("/login")
    assert LOGIN_TEXT.encode() in member(built.path, "evidence/dom.html")
    assert "session" not in manifest["capture"]


def test_with_session_the_capture_gets_the_members_page(runner: BrowserRunner, member_site: MemberSite,
                                                         operator: OperatorKey, trust: Path, packages: Path) -> None:
    state = storage_state()
    session = BrowserSession.from_bytes("shop-buyer", ACCOUNT, state)
    built = runner.capture(member_site.url("/members"), packages, operator, session=session)
    manifest = json.loads(member(built.path, "evidence/manifest.json"))
    # Both views are logged in: the raw fetch (source.html) and the browser (DOM).
    assert manifest["target"]["final_url"] == member_site.url("/members")
    assert MEMBERS_TEXT.encode() in member(built.path, "evidence/source.html")
    assert MEMBERS_TEXT.encode() in member(built.path, "evidence/dom.html")
    recorded = manifest["capture"]["session"]
    assert recorded["account"] == ACCOUNT and recorded["supplied_by"] == "requester"
    assert recorded["storage_state_sha256"] == hashlib.sha256(state).hexdigest()
    assert recorded["cookies"] == 1 and recorded["local_storage_origins"] == 1
    assert manifest["capture"]["browser"]["profile"]["cookies_at_start"] == 1
    # The credential is nowhere in the package: not the cookie, not local storage, not the state file.
    everything = _all_bytes(built.path)
    assert SESSION_ID.encode() not in everything and b"local-storage-secret-77" not in everything
    assert state not in everything
    # The request records say which cookie was sent without holding it.
    requests = [r for r in _requests(built.path) if b"GET /members " in r]
    digest = hashlib.sha256(f"sid={SESSION_ID}".encode()).hexdigest()
    assert requests and all(f"[redacted by Tiezheng: sha256 {digest}]".encode() in r for r in requests)
    # The redacted request records are still well-formed WARC whose digests hold, and the WACZ validates.
    checked = warcio_check(built.path)
    assert checked.returncode == 0 and "digest pass" in checked.stdout, checked.stdout + checked.stderr
    validated = wacz_validate(built.path)
    assert validated.returncode == 0, validated.stdout + validated.stderr
    report = verify(built.path, trust)
    found = statuses(report)
    assert found["S4"] == "warn", report.result("S4")
    assert f"authenticated as '{ACCOUNT}', session supplied by the requester" in report.result("S4").reason
    assert {found[i] for i in ("P1", "P2", "P3", "H1", "S1", "S2")} == {"pass"}, report.checks


def test_a_wrong_storage_state_is_refused_in_one_line() -> None:
    with pytest.raises(CaptureError, match="not JSON"):
        BrowserSession.from_bytes("x", ACCOUNT, b"{nope")
    with pytest.raises(CaptureError, match="cookies\\[0\\] has no string 'value'"):
        BrowserSession.from_bytes("x", ACCOUNT, b'{"cookies": [{"name": "a", "domain": "h", "path": "/"}]}')
    with pytest.raises(CaptureError, match="no cookies and no local storage"):
        BrowserSession.from_bytes("x", ACCOUNT, b'{"cookies": [], "origins": []}')


def test_cookie_header_follows_domain_path_secure_and_expiry() -> None:
    state = json.dumps({"cookies": [
        {"name": "a", "value": "1", "domain": ".shop.example", "path": "/", "expires": -1, "secure": False},
        {"name": "b", "value": "2", "domain": "www.shop.example", "path": "/account", "expires": -1},
        {"name": "c", "value": "3", "domain": "shop.example", "path": "/", "secure": True, "expires": -1},
        {"name": "d", "value": "4", "domain": ".shop.example", "path": "/", "expires": 1000.0},
    ]}).encode()
    session = BrowserSession.from_bytes("s", ACCOUNT, state)
    assert session.cookie_header("http://www.shop.example/account/orders", now=2000) == "b=2; a=1"
    assert session.cookie_header("https://shop.example/", now=2000) == "a=1; c=3"
    assert session.cookie_header("http://shop.example/accounting", now=2000) == "a=1"
    assert session.cookie_header("http://other.example/", now=2000) is None


def test_redaction_replaces_only_credential_values() -> None:
    head = b"GET / HTTP/1.1\r\nHost: h\r\nCookie: sid=x\r\nauthorization: Bearer t\r\nAccept: */*\r\n\r\n"
    out = redact_request_head(head)
    assert b"sid=x" not in out and b"Bearer t" not in out
    assert out.startswith(b"GET / HTTP/1.1\r\nHost: h\r\nCookie: [redacted by Tiezheng: sha256 ")
    assert out.endswith(b"\r\nAccept: */*\r\n\r\n")
