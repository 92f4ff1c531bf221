"""H5 for one anchor file: each chain is a witness of its own, judged on its own.

A package carries ``proof/anchor.json`` and, when the batch was anchored on several chains,
``proof/anchor-<chain_id>.json`` for each further one. Every file is checked alone (offline proof,
root and size, trusted chain, and online when a node answers for its chain), so a fault, reorg or
tampering on one chain leaves the others standing. ``check_anchor`` (H5) then counts distinct
chains against the trust policy's ``min_chains``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from verifier.court_time import plural
from verifier.errors import InvalidPackage, TiezhengError, VerificationError
from verifier.package import ANCHOR_NAME
from verifier.verdict import Status

#: Anchor files judged per package: far above any sensible number of chains, and a bound on the
#: work (keccak, trie walks) a hostile package can ask for.
MAX_ANCHOR_FILES = 16

if TYPE_CHECKING:
    from verifier.chain_source import ChainSource
    from verifier.checks.context import Context


@dataclass(frozen=True)
class Anchor:
    """An anchor record whose offline proof verified: the tx is in the block with that hash."""

    record: dict[str, Any]
    root: bytes
    tree_size: int
    chain_id: int
    block_number: int
    block_hash: str
    block_time: datetime


@dataclass
class AnchorResult:
    """One anchor file's H5 sub-result."""

    file: str
    status: Status
    reason: str
    anchor: Anchor | None = None
    facts: dict[str, Any] = field(default_factory=dict)
    #: The trust this anchor lacks (its chain), when it could not be judged for want of it.
    lacks: str | None = None

    @property
    def chain_id(self) -> int | None:
        return self.anchor.chain_id if self.anchor else None


def read_anchor(ctx: Context, name: str) -> Anchor:
    """Parse one anchor file and verify its offline proof. Raises VerificationError when it fails."""
    from verifier.anchor_proof import verify_offline_anchor  # keccak and trie load only when needed

    try:
        record = ctx.package.read_json(name)
    except InvalidPackage as exc:
        raise VerificationError(f"{name} unreadable: {exc}") from exc
    if not isinstance(record, dict):
        raise VerificationError(f"{name} must be a JSON object")
    root, tree_size = verify_offline_anchor(record)
    named = ANCHOR_NAME.match(name)
    if named and int(named.group(1)) != record["chain_id"]:
        raise VerificationError(f"{name} is named for chain {named.group(1)} but holds an anchor on chain "
                                f"{record['chain_id']}")
    return Anchor(record=record, root=root, tree_size=tree_size, chain_id=record["chain_id"],
                  block_number=record["block_number"], block_hash=str(record["block_hash"]).lower(),
                  block_time=datetime.fromtimestamp(record["block_time"], UTC))


def judge_anchors(ctx: Context) -> list[AnchorResult]:
    """Every anchor file of the package, each with its own status, in file order."""
    read: list[tuple[str, Anchor | TiezhengError]] = []
    for position, name in enumerate(ctx.package.anchor_names()):
        if position >= MAX_ANCHOR_FILES:
            read.append((name, VerificationError(f"not checked: more than {MAX_ANCHOR_FILES} anchor files")))
            continue
        try:
            read.append((name, read_anchor(ctx, name)))
        except TiezhengError as exc:
            read.append((name, exc))
    anchored = {a.chain_id for _, a in read if isinstance(a, Anchor)}
    results = []
    for name, anchor in read:
        if isinstance(anchor, TiezhengError):
            results.append(AnchorResult(name, Status.FAIL, anchor.diagnostics()))
        else:
            results.append(_judge(ctx, name, anchor, anchored))
    return results


def _judge(ctx: Context, name: str, anchor: Anchor, anchored: set[int]) -> AnchorResult:
    proof = ctx.proof
    chain = ctx.trust.chain(anchor.chain_id)
    where = (f"tx {anchor.record['tx_hash']} in block {anchor.block_number} ({anchor.block_hash}) "
             f"of chain {anchor.chain_id}")
    facts: dict[str, Any] = {"file": name, "chain_id": anchor.chain_id, "chain": chain.name if chain else None,
                             "tx_hash": anchor.record["tx_hash"], "block_number": anchor.block_number,
                             "block_hash": anchor.block_hash, "block_time": anchor.block_time.isoformat()}

    def result(status: Status, reason: str, lacks: str | None = None) -> AnchorResult:
        facts.update(status=status.value, reason=reason)
        return AnchorResult(name, status, reason, anchor, facts, lacks)

    if (anchor.root, anchor.tree_size) != (proof.root, proof.tree_size):
        return result(Status.FAIL, f"the transaction anchors root {anchor.root.hex()[:16]}… of {anchor.tree_size} "
                                   f"items, not this batch's {proof.root.hex()[:16]}… of {proof.tree_size}")
    if chain is None:
        lacks = f"chain {anchor.chain_id} (where {where} anchors the root)"
        return result(Status.SKIP, f"cannot judge: {lacks} is not in the trust given", lacks)
    if chain.development:
        ctx.flag_development(f"chain '{chain.name}' ({chain.chain_id}) is a development chain")
    source = ctx.chain.for_chain(anchor.chain_id, anchored) if ctx.chain is not None else None
    if source is None:
        how = f"--rpc {anchor.chain_id}=URL" if ctx.chain is not None else "--rpc URL"
        return result(Status.WARN, f"{where} carries the root (proven offline). Not checked offline: that this "
                                   f"block is canonical; ask any explorer or RPC for block {anchor.block_number} "
                                   f"and compare its hash, or run with {how}")
    status, reason = _check_online(source, anchor, chain.confirmations, chain.name, where, facts)
    return result(status, reason)


def _check_online(source: ChainSource, anchor: Anchor, required: int, chain_name: str, where: str,
                  facts: dict[str, Any]) -> tuple[Status, str]:
    try:
        served = source.chain_id()
        canonical = source.block_hash(anchor.block_number)
        head = source.head()
    except TiezhengError as exc:
        return Status.FAIL, f"online check requested but the RPC failed: {exc}"
    if served != anchor.chain_id:
        return Status.FAIL, f"the RPC serves chain {served}, the anchor is on chain {anchor.chain_id}"
    if canonical != anchor.block_hash:
        return Status.FAIL, f"{where}: block {anchor.block_number} on {chain_name} is now {canonical} (reorged out)"
    confirmations = head - anchor.block_number + 1
    facts["confirmations"] = confirmations
    if confirmations < required:
        return Status.FAIL, f"{where}: {plural(confirmations, 'confirmation')}, {required} required on {chain_name}"
    return Status.PASS, (f"{where} carries the root; canonical on {chain_name} with "
                         f"{plural(confirmations, 'confirmation')}")


def earliest_checked(results: list[AnchorResult]) -> Anchor:
    """The anchor T1 and T2 use: the earliest block among those checked best (online, else offline).

    When none holds, the earliest whose offline proof at least verified (its claims can then only
    count against the package). Raises VerificationError when no anchor's proof verifies.
    """
    for held in ([r for r in results if r.status is Status.PASS], [r for r in results if r.status is Status.WARN],
                 results):
        anchors = [r.anchor for r in held if r.anchor is not None]
        if anchors:
            return min(anchors, key=lambda a: (a.block_time, a.chain_id))
    if not results:
        raise VerificationError("the package carries no proof/anchor.json")
    raise VerificationError(f"no anchor proof verifies: {results[0].file}: {results[0].reason}")
