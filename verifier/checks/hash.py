"""Hash consistency (H1-H4): the bytes, the fingerprint, the batch root and the timestamp agree."""

from __future__ import annotations

from verifier.checks.anchors import AnchorResult
from verifier.checks.context import Context, Outcome
from verifier.court_time import format_time, ordinal_of, plural
from verifier.errors import TiezhengError, VerificationError
from verifier.event_log import ANCHORED_CHECKPOINT_PATH, LOG_EXPORT_KIND
from verifier.merkle import leaf_hash, verify_inclusion
from verifier.verdict import Status

#: How many individual mismatches a reason names before it summarises.
MAX_LISTED = 3


def _listing(problems: list[str]) -> str:
    shown = "; ".join(problems[:MAX_LISTED])
    more = len(problems) - MAX_LISTED
    return shown + (f"; and {more} more" if more > 0 else "")


def _all(count: int, noun: str) -> str:
    """``the 1 artifact`` / ``all 3 artifacts``."""
    return f"the {plural(count, noun)}" if count == 1 else f"all {plural(count, noun)}"


def check_artifacts(ctx: Context) -> Outcome:
    """H1: every artifact's sha256 and size match the manifest."""
    problems: list[str] = []
    artifacts = ctx.package.manifest.artifacts
    for artifact in artifacts:
        entry = ctx.package.entries.get(artifact.path)
        if entry is None:
            problems.append(f"{artifact.path} is missing")
            continue
        if entry.size != artifact.size:
            problems.append(f"{artifact.path} is {entry.size} bytes, manifest says {artifact.size}")
            continue
        try:
            digest, size = ctx.package.hash_entry(artifact.path)
        except TiezhengError as exc:
            problems.append(f"{artifact.path}: {exc}")
            continue
        if digest.hex() != artifact.sha256 or size != artifact.size:
            problems.append(f"{artifact.path} has sha256 {digest.hex()[:16]}…, manifest says {artifact.sha256[:16]}…")
    if problems:
        return Status.FAIL, _listing(problems)
    if not artifacts:
        return Status.FAIL, "the manifest lists no artifacts"
    return Status.PASS, f"{_all(len(artifacts), 'artifact')} match their sha256 and size"


def check_fingerprint(ctx: Context) -> Outcome:
    """H2: the fingerprint recomputed from the manifest equals proof.json's leaf."""
    fingerprint = ctx.package.fingerprint
    if not ctx.package.manifest_is_canonical:
        return Status.FAIL, "manifest.json is not in RFC 8785 canonical form, so its bytes were altered"
    leaf = ctx.proof.leaf
    if ctx.package.manifest.kind == LOG_EXPORT_KIND:
        return _anchored_checkpoint_sealed(ctx, leaf)
    if leaf != fingerprint:
        return Status.FAIL, f"fingerprint {fingerprint.hex()} differs from the sealed leaf {leaf.hex()}"
    return Status.PASS, f"fingerprint {fingerprint.hex()} equals the sealed leaf"


def _anchored_checkpoint_sealed(ctx: Context, leaf: bytes) -> Outcome:
    """H2 of a log export: what was sealed is the anchored checkpoint, which the signed manifest lists
    (H1 holds its bytes to the manifest), not the export made from the log afterwards."""
    if ANCHORED_CHECKPOINT_PATH not in ctx.package.entries:
        return Status.FAIL, f"the log export has no {ANCHORED_CHECKPOINT_PATH}"
    digest, _ = ctx.package.hash_entry(ANCHORED_CHECKPOINT_PATH)
    if digest != leaf:
        return Status.FAIL, f"the anchored checkpoint's sha256 {digest.hex()} differs from the sealed leaf {leaf.hex()}"
    return Status.PASS, f"the anchored checkpoint's sha256 {digest.hex()} equals the sealed leaf"


def check_inclusion(ctx: Context) -> Outcome:
    """H3: the RFC 9162 inclusion proof takes the leaf to the root."""
    proof = ctx.proof
    verify_inclusion(leaf_hash(proof.leaf), proof.leaf_index, proof.tree_size, proof.inclusion_path, proof.root)
    ctx.facts["batch"] = {"batch_id": proof.batch_id, "root": proof.root.hex(), "tree_size": proof.tree_size,
                          "leaf_index": proof.leaf_index}
    return Status.PASS, (f"{ordinal_of(proof.leaf_index, proof.tree_size)} leads to batch root "
                         f"{proof.root.hex()} ({plural(len(proof.inclusion_path), 'hash', 'hashes')})")


def check_timestamp(ctx: Context) -> Outcome:
    """H4: at least one RFC 3161 token over the root is valid and chains to a trusted TSA."""
    results = ctx.timestamp_results
    if not results:
        raise VerificationError("the package carries no RFC 3161 timestamp (proof/timestamp-<n>.tsr)")
    valid = ctx.valid_timestamps
    errors = [f"{name.removeprefix('proof/')}: {r}" for name, r in results if isinstance(r, TiezhengError)]
    if not valid:
        untrusted = ctx.untrusted_timestamps
        if untrusted:
            # Valid up to a root the package carries: only trust in that root is missing.
            _, info, root = untrusted[0]
            raise ctx.lack_trust("H4", f"the root of TSA '{info.tsa_name}' ({root.subject.rfc4514_string()})")
        return Status.FAIL, _listing(errors)
    ctx.facts["timestamps"] = [
        {"file": v.name, "tsa": v.info.tsa_name, "trusted_as": v.tsa.name,
         "gen_time": v.info.gen_time.isoformat(), "serial": str(v.info.serial), "policy": v.info.policy,
         "development": v.tsa.development}
        for v in valid]
    for v in valid:
        if v.tsa.development:
            ctx.flag_development(f"TSA '{v.tsa.name}' is a development TSA")
    first = valid[0]
    reason = (f"{len(valid)} of {plural(len(results), 'token')} valid; {first.tsa.name} signed root "
              f"{ctx.proof.root.hex()[:16]}… at {format_time(first.info.gen_time)}")
    if errors:
        reason += f" (invalid: {_listing(errors)})"
    return Status.PASS, reason


def check_anchor(ctx: Context) -> Outcome:
    """H5: the anchor transactions carry TZ01‖root‖size on trusted chains, in confirmed blocks.

    Each anchor file is a sub-result of its own (one per chain, in ``facts.anchors`` and on the
    report line); H5 holds when anchors on ``min_chains`` distinct chains hold (trust policy).
    Offline, a proof shows the tx is in the block with that hash; that the block is canonical is
    left open and said so (warn). Online, one node per chain settles it.
    """
    ctx.proof  # noqa: B018 - an unsealed package skips H5 (Skip is raised here)
    results = ctx.anchor_results
    if not results:
        raise VerificationError("the package carries no proof/anchor.json")
    required = ctx.trust.policy.min_chains
    ctx.facts["anchors"] = [r.facts or {"file": r.file, "status": r.status.value, "reason": r.reason}
                            for r in results]
    try:  # the anchor the times are read from (or, when none holds, the one the package claims)
        used = ctx.anchor
        ctx.facts["anchor"] = next(r.facts for r in results if r.anchor is used)
    except VerificationError:
        pass
    passing = {r.chain_id for r in results if r.status is Status.PASS}
    holding = passing | {r.chain_id for r in results if r.status is Status.WARN}
    unjudged = {r.chain_id for r in results if r.lacks} - holding
    if len(holding) < required and unjudged and len(holding) + len(unjudged) >= required:
        # Enough anchors might hold, but the trust given cannot say: "cannot judge", not "failed".
        raise ctx.lack_trust("H5", "; ".join(r.lacks for r in results if r.lacks))
    if len(results) == 1 and required == 1:
        return results[0].status, results[0].reason  # the one-chain report, as it always read
    if len(passing) >= required:
        status = Status.PASS
    elif len(holding) >= required:
        status = Status.WARN
    else:
        status = Status.FAIL
    summary = f"anchors on {plural(len(holding), 'chain')} hold, {required} required by the trust policy"
    if ctx.chain is not None:
        summary += f" ({len(passing)} checked online)"
    reason = summary + ": " + "; ".join(_brief(r) for r in results)
    if any(r.status is Status.WARN for r in results):
        reason += (". Not checked offline: that the blocks marked 'proven offline' are canonical; ask an explorer "
                   "or RPC of each chain, or run with --rpc CHAIN_ID=URL for each")
    return status, reason


def _brief(result: AnchorResult) -> str:
    """One anchor's sub-result on the H5 line; the full reason is in facts.anchors."""
    name = result.file.removeprefix("proof/")
    anchor = result.anchor
    if result.status in (Status.FAIL, Status.SKIP) or anchor is None:
        return f"{name} {result.status.value}: {result.reason}"
    where = f"chain {anchor.chain_id}, block {anchor.block_number}, tx {str(anchor.record['tx_hash'])[:18]}…"
    if result.status is Status.PASS:
        return f"{name} pass ({where}, {plural(int(result.facts.get('confirmations', 0)), 'confirmation')})"
    return f"{name} {result.status.value} ({where}, proven offline)"
