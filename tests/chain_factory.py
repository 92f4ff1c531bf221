"""Packages for timeline and change tests: manifests that carry ``previous`` (and other watch fields).

``with_manifest_fields`` re-signs a built package with fields added to its manifest, the way a
watch's capture carries ``previous``; ``capture_like_package`` writes a minimal signed web-capture
package (screenshot, DOM, source; no browser run) for change detection, which reads only those.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from evidence.manifest import new_evidence_id
from evidence.operator_key import OperatorKey
from evidence.upload import BuiltPackage
from verifier import canonical
from verifier.capture_format import DOM_PATH, SCREENSHOT_PATH, SOURCE_PATH
from verifier.manifest_writer import operator_json, requester_json, utc_iso
from verifier.package import MANIFEST_FORMAT, MANIFEST_PATH, SIGNATURE_PATH, Requester, open_package, parse_manifest
from verifier.wacz import Member, package_metadata, rewrite_package, write_package

REQUESTER = Requester(tenant="acme-rights", identity="counsel@acme.example")


def finish(manifest: Mapping[str, Any]) -> tuple[dict[str, Any], bytes, bytes]:
    """A manifest with fields the writer does not type (yet): its JSON, canonical bytes and fingerprint.

    The bytes go through the reader as every real manifest does, so a test cannot seal a manifest
    the verifier would refuse as malformed."""
    data = {"format": MANIFEST_FORMAT, **manifest}
    body = canonical.canonical_json(data)
    parse_manifest(body)
    return data, body, canonical.sha256(body)


def with_manifest_fields(package: BuiltPackage, operator: OperatorKey, *, files: Mapping[str, bytes] | None = None,
                         **fields: Any) -> BuiltPackage:
    """Re-sign ``package`` in place with ``fields`` added to (or replacing) its manifest's fields, and
    ``files`` (by path in the package, e.g. ``evidence/change.json``) added as artifacts."""
    manifest = dict(open_package(package.path).manifest.data)
    manifest.pop("format")
    manifest.update(fields)
    added = dict(files or {})
    manifest["artifacts"] = [*manifest["artifacts"], *(
        {"path": path, "role": path.rsplit("/", 1)[-1].split(".")[0], "media_type": "application/json",
         "size": len(data), "sha256": hashlib.sha256(data).hexdigest()} for path, data in added.items())]
    _, body, fingerprint = finish(manifest)
    rewrite_package(package.path, [*(Member(path, data=data) for path, data in added.items()),
                                   Member(MANIFEST_PATH, data=body),
                                   Member(SIGNATURE_PATH, data=operator.sign_manifest(body))],
                    drop=lambda name: name in (MANIFEST_PATH, SIGNATURE_PATH))
    return BuiltPackage(evidence_id=package.evidence_id, fingerprint=fingerprint, path=package.path)


def capture_like_package(folder: Path, operator: OperatorKey, files: Mapping[str, bytes], *,
                         http_status: int = 200, final_url: str = "https://shop.example/item/1",
                         **fields: Any) -> BuiltPackage:
    """A signed ``web-capture`` package holding ``files`` (by path in the package) and nothing a
    browser run would add: enough for change detection, not for the capture checks."""
    started = datetime.now(UTC)
    evidence_id = new_evidence_id(started)
    artifacts = [{"path": path, "role": path.rsplit("/", 1)[-1].split(".")[0], "media_type": "application/octet-stream",
                  "size": len(data), "sha256": hashlib.sha256(data).hexdigest()} for path, data in files.items()]
    _, body, fingerprint = finish({
        "evidence_id": evidence_id, "kind": "web-capture", "created_at": utc_iso(started),
        "operator": operator_json(operator.manifest_operator()), "requester": requester_json(REQUESTER),
        "target": {"requested_url": final_url, "final_url": final_url, "http_status": http_status},
        "capture": {"started_at": utc_iso(started), "ended_at": utc_iso(datetime.now(UTC))},
        "artifacts": artifacts, **fields})
    members = [Member(path, data=data) for path, data in files.items()]
    members += [Member(MANIFEST_PATH, data=body), Member(SIGNATURE_PATH, data=operator.sign_manifest(body))]
    destination = folder / f"{evidence_id}.wacz"
    write_package(destination, members, package_metadata("test capture", started))
    return BuiltPackage(evidence_id=evidence_id, fingerprint=fingerprint, path=destination)


def capture_files(screenshot: bytes, dom: str, source: str | None = None) -> dict[str, bytes]:
    """The three files change detection reads, by their path in a package."""
    return {SCREENSHOT_PATH: screenshot, DOM_PATH: dom.encode(),
            SOURCE_PATH: (source if source is not None else dom).encode()}
