"""The in-browser verifier agrees with the Python one on logged-in, egress and media captures.

Real captures (a members' page with a stored session, a page through a real tinyproxy, a gallery with
its media saved) go through both verifiers; statuses must match and the page must say the same things
(S4's session and egress warnings, P2's media clause).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from evidence.browser_session import BrowserSession
from evidence.egress import parse_proxy_url
from evidence.operator_key import OperatorKey
from tests.capture_site import BrowserRunner, Site, statuses, verify
from tests.evidence.test_egress_capture import tinyproxy  # noqa: F401 - the real proxy fixture
from tests.member_site import ACCOUNT, MemberSite, serve_member_site, storage_state
from tests.verifier.browser_page import built_page, open_page


@pytest.fixture(scope="module")
def member_site() -> Iterator[MemberSite]:
    site = serve_member_site()
    yield site
    site.close()


@pytest.fixture(scope="module")
def page(chromium: Any) -> Any:
    return open_page(chromium, built_page().as_uri())


def _agree(page: Any, package: Path, trust: Path) -> tuple[dict[str, str], dict[str, str]]:
    python = statuses(verify(package, trust))
    shown = page.verify(package, trust)
    assert shown.statuses == python, (shown.statuses, python, shown.reasons)
    return python, shown.reasons


def test_page_agrees_on_session_egress_and_media(page: Any, runner: BrowserRunner, member_site: MemberSite,
                                                 http_site: Site, tinyproxy: tuple[int, Path],  # noqa: F811
                                                 operator: OperatorKey, trust: Path, packages: Path) -> None:
    session = BrowserSession.from_bytes("buyer", ACCOUNT, storage_state())
    logged_in = runner.capture(member_site.url("/members"), packages, operator, session=session, save_media=True)
    found, reasons = _agree(page, logged_in.path, trust)
    assert found["S4"] == "warn" and f"authenticated as '{ACCOUNT}', session supplied by the requester" in reasons["S4"]
    assert "1 embedded medium matches its WARC payload, 1 saved medium file matches the index" in reasons["P2"]
    egress = parse_proxy_url("cn-east", f"http://127.0.0.1:{tinyproxy[0]}")
    routed = runner.capture(http_site.url("/dynamic"), packages, operator, egress=egress)
    found, reasons = _agree(page, routed.path, trust)
    assert found["S4"] == "warn" and "through egress 'cn-east'" in reasons["S4"]
    gallery = runner.capture(member_site.url("/gallery"), packages, operator)
    found, reasons = _agree(page, gallery.path, trust)
    assert found["P2"] == "pass" and "3 embedded media match their WARC payloads" in reasons["P2"]
