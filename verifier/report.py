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
    CANNOT_JUDGE = "cannot judge"


#: The exit code of ``tiezheng-verify`` for each verdict (DESIGN.md §5, §6).
EXIT_CODES: Mapping[Verdict, int] = {Verdict.VERIFIED: 0, Verdict.VERIFIED_OFFLINE: 0, Verdict.FAILED: 1,
                                     Verdict.UNUSABLE: 2, Verdict.CANNOT_JUDGE: 3}
#: Where counsel gets the trust a package needs; named by every ``cannot judge`` report.
TRUST_HELP = ("ask the operator for its trust file: the service publishes it at "
              "/.well-known/tiezheng/trust.toml, and `tiezheng trust export FILE` writes it; compare its "
              "SHA-256 with the one the operator declares, then pass it with --trust FILE")


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


#: What a failure of each check means for the evidence, said once for every output.
FAILURE_MEANING: Mapping[str, str] = {
    "S1": "the manifest was not signed by the operator it names, or was changed after signing",
    "S2": "the capture was not made by a neutral third party for someone else",
    "S3": "the recorded network facts do not support that the page came from the named host",
    "S4": "the capture environment is not recorded well enough to show a clean, automated capture",
    "P1": "the call log is broken or out of order, so the capture process is not shown step by step",
    "P2": "the screenshot, page source and web archive do not corroborate each other",
    "P3": "files were added to or removed from the package after it was made",
    "H1": "an evidence file is not the one that was sealed: it was changed or replaced",
    "H2": "the manifest is not the one that was sealed: it was changed",
    "H3": "the evidence is not part of the sealed batch it claims",
    "H4": "no valid trusted timestamp covers the batch, so no time of existence is proven",
    "H5": "the blockchain anchor does not hold: the batch root is not shown on the expected chain",
    "T1": "the capture, timestamp and block times contradict each other",
    "T2": "too much time passed between capture and sealing for the content to count as fixed at capture",
}
PROVES = (
    "The evidence files in this package existed, byte for byte, no later than the trusted timestamp "
    "and the block time shown, and have not changed since.",
    "They were captured or received by the named operator, whose key signed the manifest, with the "
    "process the manifest and call log record.",
)
#: Offline, the block time is the anchor's claim: a verified (offline) package proves its trusted time only.
PROVES_OFFLINE = (
    "The evidence files in this package existed, byte for byte, no later than the trusted timestamp "
    "shown, and have not changed since.",
    PROVES[1],
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
    #: (check id, the trust it lacked): checks that could not judge because the trust given lacks it.
    missing_trust: tuple[tuple[str, str], ...] = ()
    #: (check id, what was not checked and how to check it): claims taken on trust, e.g. offline.
    not_checked: tuple[tuple[str, str], ...] = ()
    #: (trust source, SHA-256 of its bytes): the trust this report was judged against.
    trust_used: tuple[tuple[str, str], ...] = ()

    def result(self, check_id: str) -> CheckResult:
        return next(r for r in self.checks if r.id == check_id)

    @property
    def verdict(self) -> Verdict:
        if self.unusable_reason is not None:
            return Verdict.UNUSABLE
        if any(r.status is Status.FAIL for r in self.checks):
            return Verdict.FAILED
        # A required check that did not pass for another reason than missing trust (say, an unsealed
        # package) fails whatever the trust: more trust could not make this package verify.
        if self.unmet_required:
            return Verdict.FAILED
        # Nothing failed, but a check could not judge for lack of trust: the package may be fine.
        if self.missing_trust:
            return Verdict.CANNOT_JUDGE
        anchor = self.result("H5").status
        if anchor is Status.PASS:
            return Verdict.VERIFIED
        # Offline, only the block's canonicity stays open; online, H5 must pass.
        if self.offline and anchor in (Status.WARN, Status.SKIP):
            return Verdict.VERIFIED_OFFLINE
        return Verdict.FAILED

    @property
    def unmet_required(self) -> list[str]:
        """Required checks (H1-H4, and H5 online) that did not pass, except those lacking trust."""
        lacking = {i for i, _ in self.missing_trust}
        required = (*REQUIRED_PASS, *(() if self.offline else ("H5",)))
        return [i for i in required if self.result(i).status is not Status.PASS and i not in lacking]

    @property
    def verified(self) -> bool:
        return self.verdict in (Verdict.VERIFIED, Verdict.VERIFIED_OFFLINE)

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.verdict]

    @property
    def failed_ids(self) -> list[str]:
        return [r.id for r in self.checks if r.status is Status.FAIL]

    @property
    def proves(self) -> tuple[str, ...]:
        """What the package proves: only a verified package proves anything."""
        if not self.verified:
            return ()
        return PROVES_OFFLINE if self.verdict is Verdict.VERIFIED_OFFLINE else PROVES

    @property
    def findings(self) -> list[str]:
        """What the verdict means, one sentence per point: what failed and what that means, why the
        input is unusable, which trust is missing and how to get it, or what was left unchecked."""
        verdict = self.verdict
        if verdict is Verdict.UNUSABLE:
            return [f"The file could not be examined as an evidence package: {self.unusable_reason}. "
                    "Nothing about the evidence is shown either way."]
        if verdict is Verdict.FAILED:
            failed = [(i, "failed") for i in self.failed_ids] or [
                (i, f"did not pass ({self.result(i).status.value}: {self.result(i).reason})")
                for i in self.unmet_required]
            return [f"{i} {CHECK_BY_ID[i].title} {how}: {FAILURE_MEANING[i]}." for i, how in failed] + [
                "The evidence does not hold as sealed; do not rely on it without an explanation of these failures."]
        if verdict is Verdict.CANNOT_JUDGE:
            return [f"{i} {CHECK_BY_ID[i].title} could not be judged: {what} is not in the trust given."
                    for i, what in self.missing_trust] + [
                f"No check failed, but the verifier cannot decide without that trust: {TRUST_HELP}."]
        return [f"Not checked offline ({i}): {what}" for i, what in self.not_checked]

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
            "findings": self.findings,
            "missing_trust": [{"check": i, "missing": what} for i, what in self.missing_trust],
            "not_checked": [{"check": i, "what": what} for i, what in self.not_checked],
            "trust_used": [{"source": source, "sha256": digest} for source, digest in self.trust_used],
            "proves": list(self.proves),
            "does_not_prove": list(DOES_NOT_PROVE),
            **({"error": self.unusable_reason} if self.unusable_reason else {}),
        }


def unusable(reason: str, *, trust_used: tuple[tuple[str, str], ...] = ()) -> Report:
    """A report for input that could not be examined at all."""
    return Report(checks=tuple(CheckResult(s.id, Status.SKIP, "input unusable") for s in CHECKS),
                  unusable_reason=reason, trust_used=trust_used)
