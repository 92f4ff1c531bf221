"""A fresh, sealed capture replays in ReplayWeb.page, the viewer archivists use, in a real headless Chromium.

The viewer reads the package over HTTP range requests (central directory, then single entries) in a
service worker, finds the page through the package's index, and renders the archived response inside
its own frames: ``<replay-web-page>`` → shadow DOM → the viewer's iframe → the replayed page's
iframe. The test reads the text of the replayed frame and keeps a screenshot ($TIEZHENG_SCREENSHOTS
when set, to look at it).
"""

from __future__ import annotations

import os
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest

from evidence.operator_key import OperatorKey
from tests.capture_site import BrowserRunner, Site, wacz_validate, warcio_check
from tests.factory import Workspace, seal_batch
from tests.replay_viewer import serve_replay, viewer_available

REPLAY_TIMEOUT_SECONDS = 60

playwright_sync = pytest.importorskip("playwright.sync_api")
pytestmark = [pytest.mark.skipif(not viewer_available(), reason="ReplayWeb.page not unpacked (run make setup)"),
              pytest.mark.timeout(240)]


def _replayed_frame(page: Any, needle: str) -> tuple[str, str]:
    """``(url, body text)`` of the frame that shows ``needle``, polling until the viewer has rendered it."""
    deadline = time.monotonic() + REPLAY_TIMEOUT_SECONDS
    seen: list[str] = []
    reloaded = False
    while time.monotonic() < deadline:
        seen = []
        for frame in page.frames:
            if frame == page.main_frame:
                continue
            try:
                text = frame.inner_text("body", timeout=1000)
            except playwright_sync.Error:
                continue
            seen.append(f"{frame.url}: {text[:200]!r}")
            if needle in text:
                return str(frame.url), str(text)
            if not reloaded and "/replay/?" in frame.url and text.strip() == "not found":
                # The viewer's iframe loaded before its service worker took control, so our plain
                # file server answered it; once the worker is active a reload is served by it
                # (what a person does when the first visit of a ReplayWeb.page embed shows nothing).
                reloaded = True
                page.reload(wait_until="load")
                break
        page.wait_for_timeout(500)
    raise AssertionError(f"no replayed frame shows {needle!r}; frames: {seen}")


def test_sealed_capture_replays_in_replaywebpage(runner: BrowserRunner, http_site: Site, operator: OperatorKey,
                                                 packages: Path, chromium: Any, workspace: Workspace,
                                                 rpc_url: str, tmp_path: Path) -> None:
    url = http_site.url("/dynamic")
    built = runner.capture(url, packages, operator)
    # The package counsel receives is the sealed one: sealing rewrote the zip with proof/ added.
    seal_batch(workspace, [built], rpc_url)
    with zipfile.ZipFile(built.path) as archive:
        assert "proof/proof.json" in archive.namelist()
    assert wacz_validate(built.path).returncode == 0
    assert warcio_check(built.path).returncode == 0
    viewer = serve_replay(built.path, url)
    context = chromium.new_context(viewport={"width": 1000, "height": 700})
    try:
        page = context.new_page()
        page.goto(viewer.base, wait_until="load")
        # The archived script runs again in replay, from the archived bytes only, and changes the text.
        frame_url, text = _replayed_frame(page, "Rendered by script after load")
        assert text.startswith("Listing")
        # Served by the viewer's service worker from the package (replay/w/<collection>/<ts>mp_/<url>),
        # not fetched from the still-running site.
        assert frame_url.startswith(f"{viewer.base}replay/w/") and frame_url.endswith(f"mp_/{url}"), frame_url
        # The viewer read the package in ranges (central directory, then entries), as it does online.
        assert viewer.package_reads()
        shots = Path(os.environ.get("TIEZHENG_SCREENSHOTS", tmp_path))
        shots.mkdir(parents=True, exist_ok=True)
        page.wait_for_timeout(500)
        page.screenshot(path=str(shots / "replay-capture.png"))
    finally:
        context.close()
        viewer.close()
