"""Time (T1-T2): capture, timestamp and block times agree; the pre-chain gap is small.

Clocks differ: the capture host's, the TSA's and the block producer's. T1 allows each comparison the
TSA's stated accuracy plus the policy tolerance, and says by how much the times differ.

Offline, the anchor's block number and time are claims (anyone can build a header that hashes to
the block hash it states), so no check passes on them. Both checks then stand on the trusted
timestamp, test the block claims only for plausibility, and record what stayed unchecked and how
to check it (``--rpc URL``). Online, H5 confirms the block with a node and its time is a fact.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from verifier.checks.context import Anchor, Context, Outcome, Skip
from verifier.court_time import format_duration, format_seconds, format_time
from verifier.errors import TiezhengError
from verifier.timestamp import TimestampInfo
from verifier.verdict import Status

RPC_HINT = "check it with --rpc URL (any JSON-RPC node of that chain)"


def _seconds(delta: timedelta) -> str:
    """A signed difference, exact to the millisecond: ``+2.5 s``, ``+1 hour 0.25 s``."""
    return ("+" if delta >= timedelta(0) else "") + format_duration(delta)


def _window(delta: timedelta) -> str:
    """A policy window, exact and in the unit the trust file sets it in: ``24 hours``."""
    hours = delta.total_seconds() / 3600
    return f"{hours:g} hour" if hours == 1 else f"{hours:g} hours"


def _tolerance(slack: timedelta, accuracy: timedelta | None, policy: timedelta) -> str:
    """The allowance of a time comparison, and what it is made of: the policy number stays exact."""
    if not accuracy:
        return f"a tolerance of {format_seconds(slack)} (policy)"
    return (f"a tolerance of {format_seconds(slack)} = TSA accuracy {format_seconds(accuracy)} "
            f"+ policy {format_seconds(policy)}")


def _earliest_stamp(ctx: Context) -> TimestampInfo | None:
    valid = ctx.valid_timestamps
    return min(valid, key=lambda v: v.info.gen_time).info if valid else None


def _verified_anchor(ctx: Context) -> Anchor | None:
    """The anchor whose offline proof holds, or None (H5 reports why)."""
    try:
        return ctx.anchor
    except (Skip, TiezhengError):
        return None


def _claimed_block(anchor: Anchor) -> str:
    return f"block {anchor.block_number} of chain {anchor.chain_id} at {format_time(anchor.block_time)}"


def check_times_agree(ctx: Context) -> Outcome:
    """T1: capture ended <= TSA gen_time (± accuracy) <= block time + tolerance."""
    ended = ctx.capture_ended
    stamp = _earliest_stamp(ctx)
    if stamp is None:
        raise Skip("no valid timestamp to compare (see H4)")
    slack = (stamp.accuracy or timedelta(0)) + ctx.trust.policy.time_tolerance
    allowed = _tolerance(slack, stamp.accuracy, ctx.trust.policy.time_tolerance)
    if ended > stamp.gen_time + slack:
        return Status.FAIL, (f"capture ended {format_time(ended)}, after the TSA time {format_time(stamp.gen_time)} "
                             f"({_seconds(ended - stamp.gen_time)}; allowed: {allowed})")
    reason = f"capture ended {format_time(ended)}, TSA time {format_time(stamp.gen_time)}"
    anchor = _verified_anchor(ctx)
    if anchor is None:
        return Status.WARN, f"{reason}: in order (within {allowed}); no verified block time to compare (see H5)"
    block_time = anchor.block_time
    # Block timestamps have whole seconds and come from another clock: the tolerance covers both.
    # Offline too: a package whose own anchor claims a block before its timestamp contradicts itself.
    if stamp.gen_time - slack > block_time:
        return Status.FAIL, (f"TSA time {format_time(stamp.gen_time)} is after the block time "
                             f"{format_time(block_time)} ({_seconds(stamp.gen_time - block_time)}; allowed: {allowed})")
    if ctx.anchor_online:
        return Status.PASS, f"{reason}, block time {format_time(block_time)}: in order (within {allowed})"
    from verifier.checks.anchor_claims import implausible_claims  # keccak and RLP load only when needed

    problems = implausible_claims(anchor, stamped=stamp.gen_time, slack=slack,
                                  window=ctx.trust.policy.prechain_window, now=ctx.now)
    if problems:
        return Status.FAIL, f"the anchor's claimed {_claimed_block(anchor)} is implausible: " + "; ".join(problems)
    ctx.leave_unchecked("T1", f"that {_claimed_block(anchor)} is real and its time true; {RPC_HINT}")
    return Status.PASS, (f"{reason}: in order (within {allowed}). Not checked offline: the block time "
                         f"{format_time(block_time)} is the anchor's claim (plausible: after the TSA time, within "
                         f"the policy window, header well formed); {RPC_HINT}")


def _gap_outcome(gap: timedelta, window: timedelta, until: str) -> Outcome | None:
    if gap > window:
        return Status.FAIL, (f"{format_duration(gap)} passed between the end of capture and {until}, more than "
                             f"the policy window of {_window(window)}: that time is not covered")
    return None


def check_prechain_gap(ctx: Context) -> Outcome:
    """T2: capture ended -> anchored within the policy window (Online Litigation Rules Art. 18)."""
    ended = ctx.capture_ended
    window = ctx.trust.policy.prechain_window
    if ctx.anchor_online:
        try:
            block_time = ctx.anchor.block_time
        except TiezhengError as exc:
            raise Skip(f"no verified anchor time ({exc})") from exc
        gap = block_time - ended
        ctx.facts.update(prechain_gap_seconds=round(gap.total_seconds(), 3), prechain_gap_until="block time")
        return _gap_outcome(gap, window, "anchoring") or (
            Status.PASS, f"anchored {format_duration(max(gap.total_seconds(), 0))} after the capture ended "
                         f"(policy window {_window(window)})")
    return _offline_gap(ctx, ended, window)


def _offline_gap(ctx: Context, ended: datetime, window: timedelta) -> Outcome:
    """Offline, the content is fixed by the trusted timestamp; the block time is only a claim."""
    stamp = _earliest_stamp(ctx)
    if stamp is None:
        raise Skip("no trusted time to measure the gap: no valid timestamp (see H4); the anchor's block "
                   f"time is a claim offline; {RPC_HINT}")
    gap = stamp.gen_time - ended
    ctx.facts.update(prechain_gap_seconds=round(gap.total_seconds(), 3), prechain_gap_until="TSA time (offline)")
    failed = _gap_outcome(gap, window, "the trusted timestamp")
    if failed:
        return failed
    anchor = _verified_anchor(ctx)
    if anchor is not None:
        # The package's own claim of a later anchoring counts against it, never for it.
        claimed = _gap_outcome(anchor.block_time - ended, window, f"the anchor's claimed {_claimed_block(anchor)}")
        if claimed:
            return claimed
        ctx.leave_unchecked("T2", f"that the batch went on chain at {format_time(anchor.block_time)}; {RPC_HINT}")
    return Status.PASS, (f"fixed by the trusted timestamp {format_duration(max(gap.total_seconds(), 0))} after the "
                         f"capture ended (policy window {_window(window)}). Not checked offline: when the batch "
                         f"went on chain (the anchor's block time is a claim); {RPC_HINT}")
