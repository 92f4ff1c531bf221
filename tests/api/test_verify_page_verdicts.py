"""The /verify page in a real browser: a hostile package shows inert, a cannot-judge verdict says why.

The package is genuine but made by another operator (the test workspace's key and TSA, which the
service does not trust), and its manifest holds escape sequences, an OSC 8 hyperlink and bidi
overrides. The page (which verifies in the browser) must show its verdict as "cannot judge", say
which trust is missing and where to get it, show no "What this proves", and render every package
string with hidden characters as visible codes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.conftest import start_server
from tests.api.server import Server
from tests.factory import Workspace
from tests.verifier.test_hostile_text import FORBIDDEN, hostile  # noqa: F401

TRUST_PATH = "/.well-known/tiezheng/trust.toml"


@pytest.fixture(scope="module")
def page_server(anvil: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from start_server(tmp_path_factory.mktemp("service-verify-page"), "sqlite")


def test_hostile_package_on_the_verify_page(page_server: Server, chromium: Any, workspace: Workspace,
                                            hostile: Path) -> None:  # noqa: F811
    digest = hashlib.sha256(httpx.get(f"{page_server.url}{TRUST_PATH}", timeout=30).content).hexdigest()
    context = chromium.new_context()
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{page_server.url}/verify")
    assert page.inner_text("#trust-sha256") == digest
    page.set_input_files("#tz-package", str(hostile))
    verdict = page.wait_for_selector("#tz-verdict[data-verdict]")
    assert verdict.get_attribute("data-verdict") == "cannot judge"
    assert "cannot judge" in verdict.inner_text()
    assert page.query_selector("#tz-proves") is None
    shown = page.inner_text("#tz-result")
    assert TRUST_PATH in shown  # where to get the missing trust
    assert "not in the trust given" in page.inner_text("tr[data-check=S1]")
    assert not [c for c in FORBIDDEN if c in shown]
    assert "\\x1b[1A" in shown and "\\u202e" in shown
    assert errors == []
    context.close()
