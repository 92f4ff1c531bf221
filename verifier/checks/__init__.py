"""The named checks of DESIGN.md §5, in report order.

Each check takes the shared Context and returns ``(status, reason)``. It may also raise: a
``VerificationError`` becomes a fail with its diagnostics, ``Skip`` becomes a skip. Every check
runs whatever the others found, because counsel needs every finding, not the first.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from verifier.checks.context import Context, Outcome, Skip
from verifier.errors import InvalidPackage, VerificationError
from verifier.package import PROOF_PATH
from verifier.verdict import CHECK_BY_ID, CheckResult, Status, checks_for
from verifier.wording import compose_zh

CheckFunction = Callable[[Context], Outcome]

#: check id -> (module under verifier.checks, function). A module loads when a package first needs
#: one of its checks: a web capture never pays for the e-mail and log parsers, and the verifier
#: starts faster (whole-process time is a target of DESIGN.md §8).
REGISTRY: dict[str, tuple[str, str]] = {
    "S1": ("source", "check_signature"),
    "S2": ("source", "check_neutral"),
    "S3": ("source", "check_network"),
    "S4": ("source", "check_environment"),
    "P1": ("path", "check_call_log"),
    "P2": ("path", "check_corroboration"),
    "P3": ("path", "check_complete"),
    "H1": ("hash", "check_artifacts"),
    "H2": ("hash", "check_fingerprint"),
    "H3": ("hash", "check_inclusion"),
    "H4": ("hash", "check_timestamp"),
    "H5": ("hash", "check_anchor"),
    "T1": ("time", "check_times_agree"),
    "T2": ("time", "check_prechain_gap"),
    "N1": ("notice", "check_reply_provenance"),
    "N2": ("notice", "check_notice_complete"),
    "L1": ("log_export", "check_included"),
    "L2": ("log_export", "check_consistent"),
    "L3": ("log_export", "check_signed"),
    "L4": ("log_export", "check_aggregates"),
    "V1": ("stream", "check_stream"),
}
assert set(REGISTRY) == set(CHECK_BY_ID)


def check_function(check_id: str) -> CheckFunction:
    module, name = REGISTRY[check_id]
    function: CheckFunction = getattr(importlib.import_module(f"verifier.checks.{module}"), name)
    return function


def _outcome(check_id: str, ctx: Context) -> Outcome:
    """Run one check and turn whatever it raised on purpose into a status and reason."""
    try:
        return check_function(check_id)(ctx)
    except Skip as exc:
        return Status.SKIP, str(exc)
    except (VerificationError, InvalidPackage) as exc:
        # A damaged entry found while checking is a finding about this check, not unusable input:
        # the manifest, which decides usability, was already parsed.
        return Status.FAIL, exc.diagnostics()


def run_check(check_id: str, ctx: Context) -> CheckResult:
    """Run one check; its Chinese finding is composed from the outcome and the facts it recorded."""
    status, reason = _outcome(check_id, ctx)
    lacking = next((what for i, what in ctx.missing_trust if i == check_id), None)
    reason_zh = compose_zh(check_id, status.value, ctx.facts, kind=ctx.package.manifest.kind, offline=ctx.offline,
                           lacking=lacking, sealed=PROOF_PATH in ctx.package.entries)
    return CheckResult(check_id, status, reason, reason_zh)


def run_checks(ctx: Context) -> tuple[CheckResult, ...]:
    return tuple(run_check(spec.id, ctx) for spec in checks_for(ctx.package.manifest.kind))
