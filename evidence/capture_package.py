"""Turn a finished capture into a signed evidence package (WACZ 1.1.1 + the Tiezheng files).

The last call-log step, ``package``, lists every artifact's path, size and sha256: everything that
is fixed before the manifest exists. It cannot list the manifest, the signature or the package's own
hash, which are made after it (and the manifest lists the log's hash). The manifest then states the
hash of that last line as ``capture.log_head`` and is signed, so the operator's signature covers the
whole log chain.
"""

from __future__ import annotations

import mimetypes
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from evidence.browser import WarmBrowser
from evidence.capture_options import CaptureOptions
from evidence.capture_run import CaptureOutcome
from evidence.environment import code_record, platform_record, tool_records
from evidence.manifest import clock_source, file_artifact
from evidence.operator_key import OperatorKey
from evidence.session_video import encoder_tool_record
from evidence.upload import BuiltPackage
from verifier.capture_format import (
    CAPTURE_LOG_PATH,
    CHANGE_PATH,
    DOM_PATH,
    ENVIRONMENT_PATH,
    INDEX_PATH,
    INDEX_SUMMARY_PATH,
    NETWORK_PATH,
    PAGES_PATH,
    SCREENSHOT_PATH,
    SESSION_VIDEO_PATH,
    SOURCE_PATH,
    WARC_PATH,
    role_of,
)
from verifier.manifest_writer import NewManifest, artifact_json, utc_iso
from verifier.media_index import MEDIA_FOLDER, MEDIA_INDEX_PATH, MEDIA_ROLE
from verifier.package import MANIFEST_PATH, SIGNATURE_PATH, Requester
from verifier.wacz import Member, package_metadata, write_package

MEDIA_TYPES = {".png": "image/png", ".html": "text/html", ".json": "application/json",
               ".jsonl": "application/x-ndjson", ".gz": "application/gzip", ".idx": "text/plain",
               ".webm": "video/webm"}
#: The order artifacts are listed in the manifest and the package.
ORDER = (ENVIRONMENT_PATH, SCREENSHOT_PATH, DOM_PATH, SOURCE_PATH, NETWORK_PATH, CHANGE_PATH, MEDIA_INDEX_PATH,
         SESSION_VIDEO_PATH, CAPTURE_LOG_PATH, WARC_PATH, PAGES_PATH, INDEX_PATH, INDEX_SUMMARY_PATH)


def _ordered(files: dict[str, Path]) -> list[str]:
    """The artifact paths in ORDER; the scripted steps' screenshots (numbered) right after the screenshot.
    Saved media are not among them (``MEDIA_FOLDER``: they follow, in the index's order)."""
    steps = sorted(path for path in files if path not in ORDER and not path.startswith(MEDIA_FOLDER))
    order = list(ORDER)
    order[ORDER.index(SCREENSHOT_PATH) + 1:ORDER.index(SCREENSHOT_PATH) + 1] = steps
    return [path for path in order if path in files]


def _role(path: str) -> str:
    role = role_of(path)
    if role is None:
        raise ValueError(f"{path} is not a web-capture artifact")  # a bug of this package, not bad input
    return role


def _media_type(path: str) -> str:
    if path.startswith(MEDIA_FOLDER):
        return mimetypes.guess_type(path)[0] or "application/octet-stream"
    if path == WARC_PATH:
        return "application/warc"
    return next((t for suffix, t in MEDIA_TYPES.items() if path.endswith(suffix)), "application/octet-stream")


def build_capture_package(outcome: CaptureOutcome, *, browser: WarmBrowser, options: CaptureOptions,
                          operator: OperatorKey, requester: Requester, packages_dir: Path) -> BuiltPackage:
    """Log ``package``, write the manifest, sign it, and write the package atomically."""
    files = dict(outcome.files)
    artifacts = [file_artifact(path, _role(path), _media_type(path), files[path]) for path in _ordered(files)]
    # Saved media (``--save-media``) follow the files every capture has, in the order the index lists them.
    artifacts += [file_artifact(path, MEDIA_ROLE, _media_type(path), files[path]) for path in files
                  if path.startswith(MEDIA_FOLDER)]
    outcome.log.record("package", inputs={"evidence_id": outcome.evidence_id,
                                          "artifacts": [artifact_json(a) for a in artifacts],
                                          "not_logged_here": "the manifest, its signature and the package hash "
                                                             "are made after this line"})
    outcome.log.close()
    ended = datetime.now(UTC)
    files[CAPTURE_LOG_PATH] = outcome.log.path
    artifacts.insert(_ordered(files).index(CAPTURE_LOG_PATH),
                     file_artifact(CAPTURE_LOG_PATH, _role(CAPTURE_LOG_PATH), _media_type(CAPTURE_LOG_PATH),
                                   outcome.log.path))
    raw = outcome.raw
    facts = browser.facts
    capture: dict[str, Any] = {
        "started_at": utc_iso(outcome.started), "ended_at": utc_iso(ended),
        "method": "automated capture by the platform: raw fetch (httpx), then headless Chromium behind the "
                  "capture's own recording proxy; every step in evidence/capture-log.jsonl",
        "tools": tool_records(facts) + ([encoder_tool_record()] if SESSION_VIDEO_PATH in files else []),
        "browser": {**facts.record(), "fresh_profile": True, "profile": outcome.profile, "proxy": outcome.proxy},
        "clock_source": clock_source(),
        "content_encoding": {**raw.body.record(), "source_html": "the final response body with the codings "
                                                                 "listed under removed taken off, nothing else"},
        "options": options.record(),
        "code": code_record(),
        "platform": platform_record(),
        "log_head": outcome.log.head,
    }
    if options.session is not None:
        capture["session"] = options.session.record()
    if options.egress is not None:
        capture["egress"] = options.egress.record()
    manifest = NewManifest(
        evidence_id=outcome.evidence_id, kind="web-capture", created_at=outcome.started,
        operator=operator.manifest_operator(), requester=requester, note=options.note,
        target={"requested_url": outcome.requested_url, "final_url": raw.final.url,
                "redirects": raw.redirects(), "http_status": raw.final.status,
                "browser_final_url": outcome.browser_final_url, "title": outcome.title},
        capture=capture, artifacts=artifacts, **options.links())
    body = manifest.canonical_bytes
    members = [Member(a.path, path=files[a.path]) for a in artifacts]
    members += [Member(MANIFEST_PATH, data=body), Member(SIGNATURE_PATH, data=operator.sign_manifest(body))]
    destination = packages_dir / f"{outcome.evidence_id}.wacz"
    write_package(destination, members, package_metadata(f"Tiezheng capture of {outcome.browser_final_url[:200]}",
                                                          outcome.started, outcome.browser_final_url))
    return BuiltPackage(evidence_id=outcome.evidence_id, fingerprint=manifest.fingerprint, path=destination)
