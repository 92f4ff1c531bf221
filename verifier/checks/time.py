"""Time (T1-T2): capture, timestamp and block times agree; the pre-chain gap is small.

Clocks differ: the capture host's, the TSA's and the block producer's. T1 allows each comparison the
TSA's stated accuracy plus the policy tolerance, and says by how much the times differ.
"""

from __future__ import annotations

from datetime import timedelta

from verifier.checks.context import Context, Outcome, Skip
from verifier.errors import TiezhengError
from verifier.report import Status


def _seconds(delta: timedelta) -> str:
    return f"{delta.total_seconds():+.3f} s"


def check_times_agree(ctx: Context) -> Outcome:
    """T1: capture ended <= TSA gen_time (± accuracy) <= block time + tolerance."""
    ended = ctx.capture_ended
    valid = ctx.valid_timestamps
    if not valid:
        raise Skip("no valid timestamp to compare (see H4)")
    stamp = min(valid, key=lambda v: v.info.gen_time).info
    slack = (stamp.accuracy or timedelta(0)) + ctx.trust.policy.time_tolerance
    if ended > stamp.gen_time + slack:
        return Status.FAIL, (f"capture ended {ended.isoformat()}, after the TSA time {stamp.gen_time.isoformat()} "
                             f"({_seconds(ended - stamp.gen_time)}, allowed {slack.total_seconds():g} s)")
    reason = f"capture ended {ended.isoformat()} ≤ TSA {stamp.gen_time.isoformat()}"
    try:
        block_time = ctx.anchor.block_time
    except (Skip, TiezhengError):
        return Status.WARN, reason + "; no verified block time to compare (see H5)"
    # Block timestamps have whole seconds and come from another clock: the tolerance covers both.
    if stamp.gen_time - slack > block_time:
        return Status.FAIL, (f"TSA time {stamp.gen_time.isoformat()} is after the block time {block_time.isoformat()} "
                             f"({_seconds(stamp.gen_time - block_time)}, allowed {slack.total_seconds():g} s)")
    return Status.PASS, f"{reason} ≤ block {block_time.isoformat()} (within {slack.total_seconds():g} s tolerance)"


def check_prechain_gap(ctx: Context) -> Outcome:
    """T2: capture ended -> anchored within the policy window (Online Litigation Rules Art. 18)."""
    ended = ctx.capture_ended
    try:
        block_time = ctx.anchor.block_time
    except TiezhengError as exc:
        raise Skip(f"no verified anchor time ({exc})") from exc
    gap = block_time - ended
    window = ctx.trust.policy.prechain_window
    ctx.facts["prechain_gap_seconds"] = round(gap.total_seconds(), 3)
    if gap > window:
        return Status.FAIL, (f"{gap} passed between capture and anchoring, more than the "
                             f"{window.total_seconds() / 3600:g} h policy window: that time is not covered")
    return Status.PASS, (f"anchored {max(gap.total_seconds(), 0):.1f} s after the capture ended "
                         f"(policy window {window.total_seconds() / 3600:g} h)")
