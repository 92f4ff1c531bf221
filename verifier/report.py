"""Check results and the verification report: the contract of DESIGN.md §5 and §6.

Check IDs are stable: reports, tests and other tools refer to them. Each result carries its legal
basis, so the report explains itself to a court without our documentation at hand.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    PASS = "pass"  # noqa: S105 - a check status, not a password
    FAIL = "fail"
    WARN = "warn"
    SKIP = "skip"


class Verdict(StrEnum):
    VERIFIED = "verified"
    VERIFIED_OFFLINE = "verified (offline)"
    FAILED = "failed"
    UNUSABLE = "unusable"


@dataclass(frozen=True)
class CheckSpec:
    id: str
    group: str
    title: str
    basis: str


HUATAI = "Huatai v. Daotong (Hangzhou Internet Court, 2018)"
CHECKS: tuple[CheckSpec, ...] = (
    CheckSpec("S1", "source", "operator signature",
              f"{HUATAI}: neutral platform; SPC Evidence Provisions (2019) Art. 94"),
    CheckSpec("S2", "source", "neutral third party",
              "SPC Evidence Provisions (2019) Art. 94: data kept by a neutral third-party platform"),
    CheckSpec("S3", "source", "network facts",
              "SPC Evidence Provisions (2019) Art. 93(1): reliable hardware and software environment"),
    CheckSpec("S4", "source", "capture environment",
              f"{HUATAI}: open, general-purpose tools; Evidence Provisions Art. 93(1)-(2); FRE 902(13)"),
    CheckSpec("P1", "path", "call log chain",
              f"{HUATAI}: clear generation path; Evidence Provisions Art. 93(3): process monitored"),
    CheckSpec("P2", "path", "corroboration",
              f"{HUATAI}: screenshot, source code and call logs corroborate each other"),
    CheckSpec("P3", "path", "package complete",
              "SPC Evidence Provisions (2019) Art. 93(4)-(5): reliable storage, transmission and extraction"),
    CheckSpec("H1", "hash", "artifact hashes",
              f"{HUATAI}: hash consistency; SPC Internet Courts Provisions (2018) Art. 11; FRE 902(14)"),
    CheckSpec("H2", "hash", "evidence fingerprint",
              "SPC Internet Courts Provisions (2018) Art. 11: hash verification"),
    CheckSpec("H3", "hash", "Merkle inclusion",
              "SPC Online Litigation Rules (2021) Art. 16: consistent after technical verification"),
    CheckSpec("H4", "hash", "trusted timestamp",
              "SPC Internet Courts Provisions (2018) Art. 11: trusted timestamps; eIDAS Art. 41"),
    CheckSpec("H5", "hash", "blockchain anchor",
              f"{HUATAI}: hash on chain; Online Litigation Rules (2021) Arts. 16-17"),
    CheckSpec("T1", "time", "times agree",
              "SPC Online Litigation Rules (2021) Art. 16; Internet Courts Provisions Art. 11"),
    CheckSpec("T2", "time", "pre-chain gap",
              "SPC Online Litigation Rules (2021) Art. 18: the time before going on chain is examined on its own"),
)
CHECK_BY_ID: Mapping[str, CheckSpec] = {spec.id: spec for spec in CHECKS}
GROUPS = ("source", "path", "hash", "time")
#: The hash checks that must pass for any "verified" verdict.
REQUIRED_PASS = ("H1", "H2", "H3", "H4")


@dataclass(frozen=True)
class CheckResult:
    id: str
    status: Status
    reason: str

    @property
    def spec(self) -> CheckSpec:
        return CHECK_BY_ID[self.id]

    def to_json(self) -> dict[str, str]:
        spec = self.spec
        return {"id": self.id, "group": spec.group, "title": spec.title, "status": self.status.value,
                "reason": self.reason, "basis": spec.basis}


PROVES = (
    "The evidence files in this package existed, byte for byte, no later than the trusted timestamp "
    "and the block time shown, and have not changed since.",
    "They were captured or received by the named operator, whose key signed the manifest, with the "
    "process the manifest and call log record.",
)
DOES_NOT_PROVE = (
    "That the web server itself vouched for the content: HTTP responses are not signed by their origin.",
    "Anything about the time before capture, or the truth of what the content says.",
    "Its legal weight, which stays with the court.",
)


@dataclass(frozen=True)
class Report:
    """Everything a verification found. Built by ``verify_package``; rendered by the CLI."""

    checks: tuple[CheckResult, ...]
    fingerprint: str | None = None
    evidence_id: str | None = None
    offline: bool = True
    facts: Mapping[str, Any] = field(default_factory=dict)
    development: tuple[str, ...] = ()
    unusable_reason: str | None = None

    def result(self, check_id: str) -> CheckResult:
        return next(r for r in self.checks if r.id == check_id)

    @property
    def verdict(self) -> Verdict:
        if self.unusable_reason is not None:
            return Verdict.UNUSABLE
        if any(r.status is Status.FAIL for r in self.checks):
            return Verdict.FAILED
        if any(self.result(i).status is not Status.PASS for i in REQUIRED_PASS):
            return Verdict.FAILED
        anchor = self.result("H5").status
        if anchor is Status.PASS:
            return Verdict.VERIFIED
        # Offline, only the block's canonicity stays open; online, H5 must pass.
        if self.offline and anchor in (Status.WARN, Status.SKIP):
            return Verdict.VERIFIED_OFFLINE
        return Verdict.FAILED

    @property
    def verified(self) -> bool:
        return self.verdict in (Verdict.VERIFIED, Verdict.VERIFIED_OFFLINE)

    @property
    def failed_ids(self) -> list[str]:
        return [r.id for r in self.checks if r.status is Status.FAIL]

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` contract of DESIGN.md §6, plus ``verdict`` and the explanatory fields."""
        return {
            "verified": self.verified,
            "verdict": self.verdict.value,
            "fingerprint": self.fingerprint,
            "evidence_id": self.evidence_id,
            "mode": "offline" if self.offline else "online",
            "checks": [r.to_json() for r in self.checks],
            "facts": dict(self.facts),
            "development_trust": list(self.development),
            "proves": list(PROVES),
            "does_not_prove": list(DOES_NOT_PROVE),
            **({"error": self.unusable_reason} if self.unusable_reason else {}),
        }


def unusable(reason: str) -> Report:
    """A report for input that could not be examined at all."""
    return Report(checks=tuple(CheckResult(s.id, Status.SKIP, "input unusable") for s in CHECKS),
                  unusable_reason=reason)
