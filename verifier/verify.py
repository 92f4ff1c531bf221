"""``verify_package``: open a package, run every check, return a report.

This is the numbered checklist of DESIGN.md §5 as one call. It raises nothing for a bad package:
unusable input becomes a report with verdict ``unusable``.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

from verifier.chain_source import ChainSource, ChainSources
from verifier.checks import run_checks
from verifier.checks.context import Context
from verifier.errors import InvalidPackage
from verifier.package import Package, open_package
from verifier.trust import Trust
from verifier.verdict import Report, Status, unusable


def verify_opened(package: Package, trust: Trust, *, chain: ChainSource | ChainSources | None = None) -> Report:
    """Run every check on an opened package and return the report; online when ``chain`` is given.

    ``chain`` is one node (it answers for the chain it serves) or a node per chain id.
    """
    sources = chain if isinstance(chain, ChainSources) or chain is None else ChainSources(default=chain)
    ctx = Context(package=package, trust=trust, chain=sources)
    manifest = package.manifest
    ctx.facts.update({"kind": manifest.kind, "target": dict(manifest.target),
                      "capture": {k: manifest.capture.get(k) for k in ("started_at", "ended_at")}})
    results = run_checks(ctx)
    anchor = next(r for r in results if r.id == "H5")
    if ctx.offline and anchor.status is Status.WARN:
        ctx.leave_unchecked("H5", "that the anchor block is on the chain's canonical chain with enough blocks "
                                  "on top; check it with --rpc URL (any JSON-RPC node of that chain)")
    return Report(checks=results, fingerprint=package.fingerprint.hex(), evidence_id=manifest.evidence_id,
                  offline=ctx.offline, facts=ctx.facts, development=tuple(ctx.development),
                  missing_trust=tuple(ctx.missing_trust), not_checked=tuple(sorted(ctx.not_checked)),
                  trust_used=trust.digests)


def verify_package(path: Path | str, trust: Trust, *, chain: ChainSource | ChainSources | None = None) -> Report:
    """Verify the package at ``path``. Never raises for bad input: returns an ``unusable`` report."""
    digest = file_sha256(Path(path))
    try:
        package = open_package(path)
    except InvalidPackage as exc:
        report = unusable(exc.diagnostics(), trust_used=trust.digests)
    else:
        report = verify_opened(package, trust, chain=chain)
    return dataclasses.replace(report, package_sha256=digest)


def file_sha256(path: Path) -> str | None:
    """SHA-256 of the package file, as ``sha256sum`` shows it; None when it cannot be read (the
    report then says why). Streamed, so any size the package reader accepts costs no memory."""
    digest = hashlib.sha256()
    try:
        with path.open("rb") as stream:
            while chunk := stream.read(1 << 20):
                digest.update(chunk)
    except OSError:
        return None
    return digest.hexdigest()
