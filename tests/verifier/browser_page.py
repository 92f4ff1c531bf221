"""Drive the built in-browser verifier page (verifier/browser/dist/verify.html) in headless Chromium.

The page is the exported, self-contained one, opened from file:// as a court would open its archived
copy. Packages and trust files go in through the page's own file inputs; the verdict and per-check
statuses are read back from the page's DOM.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "verifier" / "browser" / "dist" / "verify.html"
VERDICT_TIMEOUT_MS = 60_000


@dataclass(frozen=True)
class PageReport:
    verdict: str
    statuses: dict[str, str]
    reasons: dict[str, str]
    elapsed_ms: int


def built_page() -> Path:
    """Return the built page, building it from source when it is missing (node and npm deps needed)."""
    if not PAGE.is_file():
        if shutil.which("node") is None or not (ROOT / "node_modules" / "esbuild").is_dir():
            pytest.skip("the browser verifier is not built and cannot be (run `make setup`)")
        subprocess.run(["node", str(ROOT / "verifier" / "browser" / "build.mjs")], check=True, cwd=ROOT)
    return PAGE


class VerifierPage:
    """One open page; `verify` drops a package (and a trust file, when it changes) and reads the result."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.trust: Path | None = None

    def set_trust(self, trust: Path) -> str:
        if trust != self.trust:
            self.page.set_input_files("#tz-trust", str(trust))
            self.page.wait_for_selector("#tz-trust-status[data-sha256]")
            self.trust = trust
        return str(self.page.get_attribute("#tz-trust-status", "data-sha256"))

    def set_rpc(self, url: str | None) -> None:
        """Opt into (or out of) confirming the anchor online through ``url``."""
        self.page.set_checked("#tz-rpc-optin", url is not None)
        if url is not None:
            self.page.fill("#tz-rpc", url)
            self.page.dispatch_event("#tz-rpc", "change")

    def verify(self, package: Path, trust: Path | None = None) -> PageReport:
        if trust is not None:
            self.set_trust(trust)
        self.page.evaluate("document.getElementById('tz-result').replaceChildren()")
        self.page.set_input_files("#tz-package", str(package))
        self.page.wait_for_selector("#tz-verdict", timeout=VERDICT_TIMEOUT_MS)
        rows = self.page.eval_on_selector_all(
            "tr[data-check]", "rows => rows.map(r => [r.dataset.check, r.dataset.status, r.children[2].textContent])")
        return PageReport(verdict=str(self.page.get_attribute("#tz-verdict", "data-verdict")),
                          statuses={check: status for check, status, _ in rows},
                          reasons={check: reason for check, _, reason in rows},
                          elapsed_ms=int(self.page.get_attribute("#tz-elapsed", "data-ms") or 0))


def open_page(browser: Any, url: str, **context: Any) -> VerifierPage:
    page = browser.new_context(**context).new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(url)
    page.wait_for_selector("#tz-package", state="attached")
    assert errors == [], errors
    return VerifierPage(page)
