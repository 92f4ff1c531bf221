"""What the certificate shows of the package itself: the screenshot, the artifact list, the target.

The report holds the findings; a document for a court also shows what was captured. This module
reads it from the package with the package reader's limits, and trusts none of it: the PNG's
dimensions are read from its header and capped before any decoder sees it, and the screenshot is
offered for display only when H1 showed every evidence file (the screenshot among them) to be the
sealed one. Nothing here imports an image library, so the HTML report works without the pdf extra.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from verifier.checks.scripted_steps import describe_step
from verifier.court_time import format_time
from verifier.errors import InvalidPackage
from verifier.package import Package, open_package
from verifier.report.media_exhibit import MediaList, load_media
from verifier.sanitize import display_text
from verifier.verdict import Report, Status

SCREENSHOT_PATH = "evidence/screenshot.png"
#: Largest screenshot file shown; the capture writes far less (evidence/capture_run.py caps it too).
MAX_SCREENSHOT_BYTES = 24 << 20
#: Largest decoded screenshot shown: 1280 × 32 000 px, well under Pillow's decompression-bomb limit.
MAX_SCREENSHOT_PIXELS = 41_000_000
MAX_SIDE = 65_535
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: The viewport the capture service uses unless the manifest says otherwise (evidence/capture_options.py).
DEFAULT_VIEWPORT = (1280, 800)


@dataclass(frozen=True)
class Screenshot:
    png: bytes
    width: int
    height: int
    #: Height of the first screen in image pixels (the capture's viewport height, at most the image's).
    first_screen: int


@dataclass(frozen=True)
class Exhibit:
    """What the documents show of one package beyond the report."""

    screenshot: Screenshot | None = None
    #: Why no screenshot is shown (None when one is, or for a package that has none, e.g. an upload).
    screenshot_note: str | None = None
    #: (path, SHA-256, size in bytes) of every evidence file the manifest lists.
    artifacts: tuple[tuple[str, str, int], ...] = ()
    #: The embedded media (``verifier.report.media_exhibit``), with thumbnails of the first pictures.
    media: MediaList = field(default_factory=MediaList)


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR. Raises ValueError for anything else."""
    if len(data) < 24 or not data.startswith(PNG_SIGNATURE) or data[12:16] != b"IHDR":
        raise ValueError("not a PNG image")
    width, height = struct.unpack(">II", data[16:24])
    if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE):
        raise ValueError(f"implausible PNG size {width} x {height}")
    return width, height


def load_exhibit(path: Path | str, report: Report) -> Exhibit:
    """Read the exhibit of the package at ``path``; an unreadable package gives an empty one."""
    try:
        package = open_package(path)
    except InvalidPackage:
        return Exhibit()
    artifacts = tuple((display_text(a.path), display_text(a.sha256), a.size) for a in package.manifest.artifacts)
    screenshot, note = _screenshot(package, report)
    return Exhibit(screenshot=screenshot, screenshot_note=note, artifacts=artifacts, media=load_media(package, report))


def _screenshot(package: Package, report: Report) -> tuple[Screenshot | None, str | None]:
    listed = any(a.path == SCREENSHOT_PATH for a in package.manifest.artifacts)
    if not listed and SCREENSHOT_PATH not in package.entries:
        return None, None
    if not listed or report.result("H1").status is not Status.PASS:
        return None, ("截图未显示：H1 未能表明其为封存时的文件 / "
                      "the screenshot is not shown: H1 did not show it to be the file that was sealed")
    try:
        data = package.read(SCREENSHOT_PATH, MAX_SCREENSHOT_BYTES)
        width, height = png_size(data)
    except (InvalidPackage, KeyError, ValueError) as exc:
        return None, f"截图未显示 / the screenshot is not shown: {display_text(str(exc))}"
    if width * height > MAX_SCREENSHOT_PIXELS:
        return None, (f"截图（{width} × {height} 像素）超出本文件可显示的大小，"
                      f"完整截图见证据包中的 {SCREENSHOT_PATH} / "
                      f"the screenshot ({width} x {height} px) is larger than this document shows "
                      f"({MAX_SCREENSHOT_PIXELS:,} px); it is in the package as {SCREENSHOT_PATH}")
    view_width, view_height = _viewport(package.manifest.capture)
    # A device scale factor above 1 makes the image wider than the viewport: scale the fold with it.
    first = round(view_height * width / view_width) if view_width else height
    return Screenshot(png=data, width=width, height=height, first_screen=max(1, min(first, height))), None


def _viewport(capture: Mapping[str, Any]) -> tuple[int, int]:
    options = capture.get("options")
    viewport = options.get("viewport") if isinstance(options, Mapping) else None
    if (isinstance(viewport, Sequence) and len(viewport) == 2
            and all(isinstance(v, int) and 0 < v <= MAX_SIDE for v in viewport)):
        return viewport[0], viewport[1]
    return DEFAULT_VIEWPORT


def verification_link(base_url: str | None, fingerprint: str) -> str | None:
    """The operator's ``/verify?fingerprint=…`` page for this evidence; None without a usable base URL.

    ``base_url`` is the service (``https://host``) or its verify page (``https://host/verify``, as
    the trust file's verify_url names it). Only http(s) URLs without credentials are used: the QR
    code must not send a reader elsewhere."""
    if not base_url:
        return None
    parts = urlsplit(base_url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.password:
        return None
    root = f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"
    page = root if root.endswith("/verify") else f"{root}/verify"
    return f"{page}?fingerprint={quote(fingerprint)}"


def target_rows(report: Report) -> list[tuple[str, str, str]]:
    """(English label, Chinese label, value) for the capture target, in reading order; empty for an upload."""
    target = report.facts.get("target")
    if not isinstance(target, Mapping) or not target:
        return []
    network = report.facts.get("network")
    network = network if isinstance(network, Mapping) else {}
    redirects = target.get("redirects")
    hops = redirects if isinstance(redirects, list) else []
    rows = [("Requested URL", "请求网址", target.get("requested_url") or target.get("url"))]
    rows += [(f"Redirect {n}", f"重定向 {n}", _hop(hop)) for n, hop in enumerate(hops, start=1)]
    rows += [("Final URL", "最终网址", target.get("final_url") or network.get("final_url")),
             ("HTTP status", "HTTP 状态码", target.get("status") or target.get("http_status") or network.get("status")),
             ("Page title", "网页标题", target.get("title"))]
    if not hops:
        rows.insert(1, ("Redirects", "重定向", "none  无"))
    return [(en, zh, display_text(str(value))) for en, zh, value in rows if value not in (None, "")]


def _hop(hop: object) -> str:
    """``301 http://a/ → /b`` for a recorded redirect hop."""
    if not isinstance(hop, Mapping):
        return str(hop)
    return f"{hop.get('status', '—')} {hop.get('url', '—')} → {hop.get('location', '—')}"


def both_times(value: object) -> str:
    """A package time in the one court format (``format_time``: UTC+8, then UTC), escaped for display;
    a value that is not a time stays visible as it is, and a missing one is an em dash."""
    if value is None or value == "":
        return "—"
    return display_text(format_time(value) if isinstance(value, str) else str(value))


#: The heading of the scripted steps in every report (English, Chinese).
STEPS_TITLE = ("Scripted steps run before the screenshot", "截图前执行的预设步骤")


def step_lines(report: Report) -> list[str]:
    """The scripted steps the capture ran, one escaped line each (P2 records them); empty when none ran."""
    steps = report.facts.get("scripted_steps")
    if not isinstance(steps, list):
        return []
    return [display_text(describe_step(step)) for step in steps if isinstance(step, dict)]


def video_line(report: Report) -> str | None:
    """What P2 found of the session video, escaped; None when the capture recorded none (or it failed P2)."""
    video = report.facts.get("session_video")
    return display_text(str(video)) if isinstance(video, str) and video else None
