"""Generation and transmission path (P1-P3): the call log, corroboration and completeness."""

from __future__ import annotations

from typing import Any

from verifier.checks.context import Context, Outcome, Skip
from verifier.checks.corroboration import check_corroborates, check_log_chain
from verifier.checks.stream import check_stream_corroboration, check_stream_log
from verifier.court_time import plural
from verifier.errors import InvalidPackage
from verifier.package import (
    ANCHOR_NAME,
    ANCHOR_PATH,
    DATAPACKAGE_DIGEST_PATH,
    DATAPACKAGE_PATH,
    MANIFEST_PATH,
    NOT_CAPTURED_KINDS,
    PROOF_PATH,
    SIGNATURE_PATH,
    TIMESTAMP_NAME,
    TSA_CERTS_NAME,
)
from verifier.stream_format import STREAM_KIND
from verifier.verdict import Status

#: Files a package holds besides the artifacts its manifest lists.
STRUCTURAL = frozenset({DATAPACKAGE_PATH, DATAPACKAGE_DIGEST_PATH, MANIFEST_PATH, SIGNATURE_PATH})
SEALING = frozenset({PROOF_PATH, ANCHOR_PATH})


def check_call_log(ctx: Context) -> Outcome:
    """P1: the capture log's hash chain is intact, its times monotonic, every step automated."""
    if ctx.package.manifest.kind == "upload":
        raise Skip("upload: no capture log; the files were received, not captured")
    if ctx.package.manifest.kind == STREAM_KIND:
        return check_stream_log(ctx)
    if ctx.package.manifest.kind == "log-export":
        raise Skip("log-export: events recorded by an append-only log, not a web capture: no capture log (L1-L4 "
                   "check the log)")
    if ctx.package.manifest.kind in NOT_CAPTURED_KINDS:
        raise Skip(f"{ctx.package.manifest.kind}: an e-mail sealed as sent or received, not a web capture: "
                   "no capture log")
    return check_log_chain(ctx)


def check_corroboration(ctx: Context) -> Outcome:
    """P2: screenshot, source, DOM and WARC corroborate each other."""
    if ctx.package.manifest.kind == "upload":
        raise Skip("upload: no capture log or recorded traffic to corroborate")
    if ctx.package.manifest.kind == STREAM_KIND:
        return check_stream_corroboration(ctx)
    if ctx.package.manifest.kind == "log-export":
        raise Skip("log-export: events recorded by an append-only log: no web traffic to corroborate")
    if ctx.package.manifest.kind in NOT_CAPTURED_KINDS:
        raise Skip(f"{ctx.package.manifest.kind}: an e-mail sealed as sent or received: no web traffic to corroborate")
    return check_corroborates(ctx)


def _is_sealing_file(name: str) -> bool:
    return name in SEALING or bool(TIMESTAMP_NAME.match(name) or TSA_CERTS_NAME.match(name) or ANCHOR_NAME.match(name))


def _datapackage_problems(ctx: Context, names: set[str]) -> list[str]:
    try:
        datapackage: Any = ctx.package.read_json(DATAPACKAGE_PATH)
        digest: Any = ctx.package.read_json(DATAPACKAGE_DIGEST_PATH)
    except InvalidPackage as exc:
        return [str(exc)]
    problems = []
    resources = datapackage.get("resources") if isinstance(datapackage, dict) else None
    if not isinstance(resources, list):
        return ["datapackage.json has no resources list"]
    listed: dict[str, Any] = {}
    for item in resources:
        if not isinstance(item, dict) or not isinstance(item.get("path"), str):
            problems.append("datapackage.json has a malformed resource")
            continue
        listed[item["path"]] = item
    for name in sorted(names - STRUCTURAL - {DATAPACKAGE_PATH, DATAPACKAGE_DIGEST_PATH}):
        item = listed.get(name)
        if item is None:
            problems.append(f"{name} is not listed in datapackage.json")
            continue
        digest_hex, size = ctx.package.hash_entry(name)
        if item.get("hash") != f"sha256:{digest_hex.hex()}" or item.get("bytes") != size:
            problems.append(f"datapackage.json has a wrong hash or size for {name}")
    for name in sorted(set(listed) - names):
        problems.append(f"datapackage.json lists {name}, which the package lacks")
    own_digest, _ = ctx.package.hash_entry(DATAPACKAGE_PATH)
    if not isinstance(digest, dict) or digest.get("hash") != f"sha256:{own_digest.hex()}":
        problems.append("datapackage-digest.json does not match datapackage.json")
    return problems


def check_complete(ctx: Context) -> Outcome:
    """P3: files = manifest artifacts + WACZ files + proof files, and datapackage.json is right."""
    names = set(ctx.package.entries)
    artifacts = {a.path for a in ctx.package.manifest.artifacts}
    missing = sorted((artifacts | STRUCTURAL) - names)
    extra = sorted(n for n in names - artifacts - STRUCTURAL if not _is_sealing_file(n))
    problems = [f"missing {n}" for n in missing] + [f"unexpected {n}" for n in extra]
    if not missing:
        problems += _datapackage_problems(ctx, names)
    if problems:
        return Status.FAIL, "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
    proofs = sum(map(_is_sealing_file, names))
    return Status.PASS, (f"{plural(len(names), 'file')}: {plural(len(artifacts), 'artifact')}, the WACZ and "
                         f"Tiezheng files, {plural(proofs, 'proof file')}; datapackage.json hashes valid")
