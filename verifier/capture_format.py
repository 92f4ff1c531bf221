"""The web-capture side of the package format (``kind: web-capture``): file names, roles, log steps.

The capture tool (evidence/) writes these files and the verifier's S3, S4, P1 and P2 read them, so
both import the names from here. Every path is ``folder/name`` (depth 2, ``[A-Za-z0-9._-]``), because
the WACZ validator only looks at the last two path components.
"""

from __future__ import annotations

from verifier.media_index import MEDIA_INDEX_PATH, MEDIA_INDEX_ROLE

SCREENSHOT_PATH = "evidence/screenshot.png"
DOM_PATH = "evidence/dom.html"
SOURCE_PATH = "evidence/source.html"
NETWORK_PATH = "evidence/network.json"
CAPTURE_LOG_PATH = "evidence/capture-log.jsonl"
WARC_PATH = "archive/data.warc.gz"
PAGES_PATH = "pages/pages.jsonl"
#: The replay index, ZipNum-compressed: gzip blocks of CDXJ lines, and the summary that locates them.
INDEX_PATH = "indexes/index.cdx.gz"
INDEX_SUMMARY_PATH = "indexes/index.idx"
#: The clean-environment record, made before the capture touches the target (S4 reads it).
ENVIRONMENT_PATH = "evidence/environment-check.json"
#: A watch's capture: how it differs from the watch's previous capture (evidence/change.py writes it).
CHANGE_PATH = "evidence/change.json"
#: The session video (evidence/session_video.py records it; P2 measures it with verifier/webm.py).
SESSION_VIDEO_PATH = "evidence/session.webm"
#: The viewport screenshot after scripted step N (1-based): ``evidence/step-01.png`` …
STEP_SCREENSHOT_PATH = "evidence/step-{:02d}.png"
STEP_SCREENSHOT_ROLE = "step-screenshot"

#: Artifact roles in the manifest, by path.
ROLES = {
    SCREENSHOT_PATH: "screenshot",
    DOM_PATH: "dom",
    SOURCE_PATH: "source",
    NETWORK_PATH: "network",
    CAPTURE_LOG_PATH: "capture-log",
    WARC_PATH: "warc",
    PAGES_PATH: "wacz-pages",
    INDEX_PATH: "wacz-index",
    INDEX_SUMMARY_PATH: "wacz-index-summary",
    ENVIRONMENT_PATH: "environment-check",
    CHANGE_PATH: "change",
    SESSION_VIDEO_PATH: "session-video",
    MEDIA_INDEX_PATH: MEDIA_INDEX_ROLE,
}

NETWORK_FORMAT = "tiezheng-network/1"
ENVIRONMENT_FORMAT = "tiezheng-environment-check/1"
#: The call-log step that writes the environment record; a capture logs it first.
ENVIRONMENT_STEP = "environment-check"
#: The proxy kind a capture records for its own recording proxy (DESIGN.md §3, byte-exact traffic).
RECORDER_KIND = "tiezheng-recorder"
#: The actor of every automated step. A human step would name someone else, and P1 fails it.
SYSTEM_ACTOR = "system"

#: The call-log steps of the session video: ``video-start`` when recording begins (before navigation),
#: ``video`` when the file is finished; ``video`` names the span it covers as ``covers.from_seq`` and
#: ``covers.to_seq`` (log line numbers, 0-based), and P2 holds the video's duration to that span.
VIDEO_START_STEP, VIDEO_STEP = "video-start", "video"
#: A scripted step (evidence/capture_steps.py): one log line each, with its viewport screenshot.
SCRIPTED_STEP = "scripted-step"


def role_of(path: str) -> str | None:
    """The manifest role of a web-capture artifact path, or None for a path the format does not know."""
    if path in ROLES:
        return ROLES[path]
    if path.startswith("evidence/step-") and path.endswith(".png") and path[len("evidence/step-"):-4].isdigit():
        return STEP_SCREENSHOT_ROLE
    return None


#: Steps every capture log holds, in this order (other steps may come between them).
REQUIRED_STEPS = ("start", "resolve", "fetch", "navigate", "wait", "screenshot", "dom", "warc", "network",
                  "package")
