"""Shared fixtures. Golden data is loaded through ``vectors`` only."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from anchor.devnet import AnvilNotFound, Devnet, find_anvil

VECTORS = Path(__file__).parent / "vectors"
#: Debian's Chromium, driven by Playwright as the capture code drives it (DESIGN §3).
CHROMIUM = Path(os.environ.get("TIEZHENG_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage"]


@pytest.fixture(scope="session")
def vectors() -> Path:
    """The folder of golden test data (copies of public vectors plus our own)."""
    return VECTORS


@pytest.fixture()
def workspace(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A fresh data folder with a real operator key and development TSA."""
    from tests.factory import make_workspace

    return make_workspace(tmp_path)


@pytest.fixture(scope="session")
def anvil() -> Path:
    """The anvil binary; tests that need a chain are skipped when there is none."""
    try:
        return find_anvil()
    except AnvilNotFound as exc:
        pytest.skip(f"needs the anvil binary (run `make setup`): {exc}")


@pytest.fixture(scope="session")
def devnet(anvil: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    """One running devnet in a temporary data dir, shared by the session and stopped at its end."""
    node = Devnet(tmp_path_factory.mktemp("devnet-data"), anvil=anvil, die_with_parent=True)
    node.start()
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture(scope="session")
def rpc_url(devnet: Devnet) -> str:
    return devnet.rpc_url


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """A headless Chromium through Playwright's sync API, one per test module (not per session: the
    sync API must not outlive a module whose other tests run their own asyncio loops)."""
    sync_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.is_file():
        pytest.skip(f"no Chromium at {CHROMIUM} (install Debian's chromium package)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS)
        try:
            yield browser
        finally:
            browser.close()
