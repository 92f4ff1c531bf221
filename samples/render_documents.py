"""Render the documents of the sample packages to PNG, so reviewers can see them without the tools.

    python samples/render_documents.py        (needs the project's setup: Chromium, poppler-utils)

For each sample below: the PDF certificate, every page, at 1280 px and 390 px wide (pdftoppm), and the
HTML report as a full-page Chromium screenshot at 1280 px and 390 px viewport width. The PNGs are
reduced to 16 colours to keep the repository small; they are for looking at, not evidence.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from PIL import Image
from playwright.sync_api import sync_playwright

from evidence.browser import find_chromium
from verifier.report.html_page import render_html
from verifier.report.pdf_certificate import write_pdf
from verifier.trust import default_trust, load_trust
from verifier.verify import verify_package

HERE = Path(__file__).resolve().parent
OUT = HERE / "renders"
SAMPLES = ("good-capture", "bad-H1-artifact-changed")
WIDTHS = (1280, 390)
#: A fixed issue time, so re-rendering unchanged samples changes no render.
ISSUED = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
VERIFY_URL = "https://evidence.example"


def _small(path: Path) -> None:
    with Image.open(path) as image:
        reduced = image.convert("RGB").quantize(colors=16)
    reduced.save(path, optimize=True)


def render(name: str, folder: Path, browser: object) -> list[Path]:
    package = HERE / "packages" / f"{name}.wacz"
    trust = default_trust().merged(load_trust(HERE / "trust.toml"))
    report = verify_package(package, trust)
    pdf, page = folder / f"{name}.pdf", folder / f"{name}.html"
    write_pdf(report, pdf, source=package.name, generated_at=ISSUED, package=package, verify_url=VERIFY_URL)
    page.write_text(render_html(report, source=package.name, generated_at=ISSUED, package=package), encoding="utf-8")
    written = []
    for width in WIDTHS:
        prefix = OUT / f"{name}-pdf-{width}"
        subprocess.run(["pdftoppm", "-png", "-scale-to-x", str(width), "-scale-to-y", "-1", str(pdf), str(prefix)],
                       check=True)
        written += sorted(OUT.glob(f"{prefix.name}-*.png"))
        tab = browser.new_page(viewport={"width": width, "height": 900})  # type: ignore[attr-defined]
        tab.goto(page.as_uri())
        target = OUT / f"{name}-html-{width}.png"
        tab.screenshot(path=str(target), full_page=True)
        tab.close()
        written.append(target)
    return written


def main() -> None:
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    binary, _how = find_chromium()
    with tempfile.TemporaryDirectory(prefix="tiezheng-renders-") as folder, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(binary), headless=True)
        try:
            for name in SAMPLES:
                for path in render(name, Path(folder), browser):
                    _small(path)
                    print(path.relative_to(HERE))
        finally:
            browser.close()


if __name__ == "__main__":
    sys.exit(main())
