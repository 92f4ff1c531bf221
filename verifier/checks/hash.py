"""Hash consistency (H1-H4): the bytes, the fingerprint, the batch root and the timestamp agree."""

from __future__ import annotations

from verifier.checks.context import Anchor, Context, Outcome
from verifier.court_time import format_time, ordinal_of, plural
from verifier.errors import TiezhengError, VerificationError
from verifier.merkle import leaf_hash, verify_inclusion
from verifier.report import Status

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
    if leaf != fingerprint:
        return Status.FAIL, f"fingerprint {fingerprint.hex()} differs from the sealed leaf {leaf.hex()}"
    return Status.PASS, f"fingerprint {fingerprint.hex()} equals the sealed leaf"


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
    """H5: the anchor transaction carries TZ01‖root‖size on a trusted chain, in a confirmed block.

    Offline, the proof shows the tx is in the block with that hash; that the block is canonical is
    left open and said so (warn). Online, one node settles it.
    """
    proof = ctx.proof
    anchor = ctx.anchor
    if (anchor.root, anchor.tree_size) != (proof.root, proof.tree_size):
        return Status.FAIL, (f"the transaction anchors root {anchor.root.hex()[:16]}… of {anchor.tree_size} "
                             f"items, not this batch's {proof.root.hex()[:16]}… of {proof.tree_size}")
    chain = ctx.trust.chain(anchor.chain_id)
    where = (f"tx {anchor.record['tx_hash']} in block {anchor.block_number} ({anchor.block_hash}) "
             f"of chain {anchor.chain_id}")
    ctx.facts["anchor"] = {"chain_id": anchor.chain_id, "chain": chain.name if chain else None,
                           "tx_hash": anchor.record["tx_hash"], "block_number": anchor.block_number,
                           "block_hash": anchor.block_hash, "block_time": anchor.block_time.isoformat()}
    if chain is None:
        raise ctx.lack_trust("H5", f"chain {anchor.chain_id} (where {where} anchors the root)")
    if chain.development:
        ctx.flag_development(f"chain '{chain.name}' ({chain.chain_id}) is a development chain")
    if ctx.chain is None:
        return Status.WARN, (f"{where} carries the root (proven offline). Not checked offline: that this block is "
                             f"canonical; ask any explorer or RPC for block {anchor.block_number} and compare its "
                             f"hash, or run with --rpc URL")
    return _check_online(ctx, anchor, chain.confirmations, chain.name, where)


def _check_online(ctx: Context, anchor: Anchor, required: int, chain_name: str, where: str) -> Outcome:
    assert ctx.chain is not None
    try:
        served = ctx.chain.chain_id()
        canonical = ctx.chain.block_hash(anchor.block_number)
        head = ctx.chain.head()
    except TiezhengError as exc:
        return Status.FAIL, f"online check requested but the RPC failed: {exc}"
    if served != anchor.chain_id:
        return Status.FAIL, f"the RPC serves chain {served}, the anchor is on chain {anchor.chain_id}"
    if canonical != anchor.block_hash:
        return Status.FAIL, f"{where}: block {anchor.block_number} on {chain_name} is now {canonical} (reorged out)"
    confirmations = head - anchor.block_number + 1
    ctx.facts["anchor"]["confirmations"] = confirmations
    if confirmations < required:
        return Status.FAIL, f"{where}: {plural(confirmations, 'confirmation')}, {required} required on {chain_name}"
    return Status.PASS, (f"{where} carries the root; canonical on {chain_name} with "
                         f"{plural(confirmations, 'confirmation')}")
