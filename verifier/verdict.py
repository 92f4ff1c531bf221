"""Check results and the verification report: the contract of DESIGN.md §5 and §6.

Check IDs are stable: reports, tests and other tools refer to them. Each result carries its legal
basis, so the report explains itself to a court without our documentation at hand.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from verifier.legal_basis import legal_basis
from verifier.wording import (
    DOES_NOT_PROVE_ZH,
    FAILURE_MEANING_ZH,
    NOT_CHECKED_ZH,
    PROVES_OFFLINE_ZH,
    PROVES_ZH,
    STATUS_ZH,
    TITLES_ZH,
    TRUST_HELP_ZH,
    VERDICT_ZH,
    compose_zh,
    shown_name,
)


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

    @property
    def title_zh(self) -> str:
        return TITLES_ZH[self.id]

    @property
    def basis(self) -> str:
        """The legal basis in English; ``legal_basis`` holds the one table of citations."""
        return legal_basis(self.id, "en")

    @property
    def basis_zh(self) -> str:
        return legal_basis(self.id, "zh")


CHECKS: tuple[CheckSpec, ...] = (
    CheckSpec("S1", "source", "operator signature"),
    CheckSpec("S2", "source", "neutral third party"),
    CheckSpec("S3", "source", "network facts"),
    CheckSpec("S4", "source", "capture environment"),
    CheckSpec("P1", "path", "call log chain"),
    CheckSpec("P2", "path", "corroboration"),
    CheckSpec("P3", "path", "package complete"),
    CheckSpec("H1", "hash", "artifact hashes"),
    CheckSpec("H2", "hash", "evidence fingerprint"),
    CheckSpec("H3", "hash", "Merkle inclusion"),
    CheckSpec("H4", "hash", "trusted timestamp"),
    CheckSpec("H5", "hash", "blockchain anchor"),
    CheckSpec("T1", "time", "times agree"),
    CheckSpec("T2", "time", "pre-chain gap"),
)
#: The checks of a log export (kind ``log-export``), run after the others on such packages only.
LOG_CHECKS: tuple[CheckSpec, ...] = (
    CheckSpec("L1", "log", "events included"),
    CheckSpec("L2", "log", "checkpoint consistency"),
    CheckSpec("L3", "log", "checkpoint signature"),
    CheckSpec("L4", "log", "aggregates recompute"),
)
#: Checks that run only for one kind of evidence, after the common ones (DESIGN.md §5, other kinds).
KIND_CHECKS: Mapping[str, tuple[CheckSpec, ...]] = {
    "notice": (CheckSpec("N2", "notice", "notice completeness"),),
    "notice-reply": (CheckSpec("N1", "notice", "reply provenance"),),
    "log-export": LOG_CHECKS,
    "stream": (CheckSpec("V1", "stream", "stream segment chain"),),
}
CHECK_BY_ID: Mapping[str, CheckSpec] = {spec.id: spec for spec in
                                        (*CHECKS, *(s for specs in KIND_CHECKS.values() for s in specs))}
GROUPS = ("source", "path", "hash", "time")
#: Groups shown only when a report holds one of their checks.
KIND_GROUPS = ("notice", "log", "stream")


def checks_for(kind: str) -> tuple[CheckSpec, ...]:
    """Every check a package of ``kind`` gets, in report order."""
    return CHECKS + KIND_CHECKS.get(kind, ())


def shown_groups(results: Sequence[CheckResult]) -> tuple[str, ...]:
    """The groups a report lists: the four common ones, then any kind's group it has checks of."""
    return GROUPS + tuple(g for g in KIND_GROUPS if any(r.spec.group == g for r in results))
#: The hash checks that must pass for any "verified" verdict.
REQUIRED_PASS = ("H1", "H2", "H3", "H4")


@dataclass(frozen=True)
class CheckResult:
    id: str
    status: Status
    reason: str
    #: The finding in Chinese, composed from the check id, status and facts (``wording.compose_zh``).
    reason_zh: str = ""

    @property
    def spec(self) -> CheckSpec:
        return CHECK_BY_ID[self.id]

    def to_json(self) -> dict[str, str]:
        spec = self.spec
        return {"id": self.id, "group": spec.group, "title": spec.title, "title_zh": spec.title_zh,
                "status": self.status.value, "status_zh": STATUS_ZH[self.status.value],
                "reason": self.reason, "reason_zh": self.reason_zh, "basis": spec.basis, "basis_zh": spec.basis_zh}


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
    "N1": "the reply's DKIM signature does not hold: the reply was changed, or did not come from the domain it names",
    "N2": "the sealed notice record or PDF is not what the sent message carried",
    "L1": "a disclosed event is not in the log as it was recorded: it was changed, moved or never logged",
    "L2": "the log was rewritten: the checkpoint is not a prefix of the anchored one",
    "L3": "the checkpoint was not signed by the operator's key",
    "L4": "the aggregates do not follow from the disclosed events",
    "V1": "the recorded stream is not the one served as logged: a segment was changed, reordered or dropped "
          "without a trace, or the durations do not add up to the claimed span",
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
#: What a verified log export proves, in English and Chinese; offline without the block time.
PROVES_LOG = (
    ("The disclosed events, with the values shown, were in the operator's log no later than the trusted "
     "timestamp and the block time of the anchored checkpoint, at the positions shown, and the log was "
     "not rewritten between the two checkpoints.",
     "Withheld fields are fixed by their salted hashes; the aggregates follow from the disclosed events."),
    ("所披露的事件及其所示内容，不晚于已锚定检查点的可信时间戳时间和区块时间已在运营方的日志中，位置如所示；"
     "两个检查点之间日志未被改写。",
     "未披露的字段由其加盐哈希值固定；统计数据可由所披露的事件复算得出。"),
)
PROVES_LOG_OFFLINE = (
    (("The disclosed events, with the values shown, were in the operator's log no later than the trusted "
      "timestamp of the anchored checkpoint, at the positions shown, and the log was not rewritten between "
      "the two checkpoints."), PROVES_LOG[0][1]),
    (("所披露的事件及其所示内容，不晚于已锚定检查点的可信时间戳时间已在运营方的日志中，位置如所示；"
      "两个检查点之间日志未被改写。"), PROVES_LOG[1][1]),
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
    #: SHA-256 of the package file as the verifier read it: the file the court was handed.
    package_sha256: str | None = None

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
        if self.facts.get("kind") == "log-export":  # the checkpoint was sealed, not the export
            return (PROVES_LOG_OFFLINE if self.verdict is Verdict.VERIFIED_OFFLINE else PROVES_LOG)[0]
        return PROVES_OFFLINE if self.verdict is Verdict.VERIFIED_OFFLINE else PROVES

    @property
    def proves_zh(self) -> tuple[str, ...]:
        if not self.verified:
            return ()
        if self.facts.get("kind") == "log-export":
            return (PROVES_LOG_OFFLINE if self.verdict is Verdict.VERIFIED_OFFLINE else PROVES_LOG)[1]
        return PROVES_OFFLINE_ZH if self.verdict is Verdict.VERIFIED_OFFLINE else PROVES_ZH

    @property
    def findings_zh(self) -> list[str]:
        """``findings`` in Chinese, point for point. Quoted trust and reasons stay as the package and
        checks state them."""
        verdict = self.verdict
        if verdict is Verdict.UNUSABLE:
            return [f"该文件无法作为证据包检验：{self.unusable_reason}。对证据本身不能得出任何结论。"]
        if verdict is Verdict.FAILED:
            unmet = [self.result(i) for i in self.unmet_required]
            failed = [(i, "未通过") for i in self.failed_ids] or [
                (r.id, f"未获通过（{STATUS_ZH[r.status.value]}：{r.reason_zh or r.reason}）") for r in unmet]
            return [f"{i} {TITLES_ZH[i]}{how}：{FAILURE_MEANING_ZH[i]}。" for i, how in failed] + [
                "该证据不能按封存时的状态成立；在上述问题得到解释之前，不应依赖该证据。"]
        if verdict is Verdict.CANNOT_JUDGE:
            return [f"{i} {TITLES_ZH[i]}无法判断：所给信任配置中缺少 {what}。" for i, what in self.missing_trust] + [
                f"已完成的检查均成立，但因缺少上述信任配置，验证程序无法作出判断：{TRUST_HELP_ZH}。"]
        return [f"离线未核对（{i}）：{NOT_CHECKED_ZH.get(i, what)}" for i, what in self.not_checked]

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
            "verdict_zh": VERDICT_ZH[self.verdict.value],
            "fingerprint": self.fingerprint,
            "package_sha256": self.package_sha256,
            "evidence_id": self.evidence_id,
            "mode": "offline" if self.offline else "online",
            "checks": [r.to_json() for r in self.checks],
            "facts": dict(self.facts),
            "development_trust": list(self.development),
            "findings": self.findings,
            "findings_zh": self.findings_zh,
            "missing_trust": [{"check": i, "missing": what} for i, what in self.missing_trust],
            "not_checked": [{"check": i, "what": what} for i, what in self.not_checked],
            "trust_used": [{"source": shown_name(source), "sha256": digest} for source, digest in self.trust_used],
            "proves": list(self.proves),
            "does_not_prove": list(DOES_NOT_PROVE),
            "proves_zh": list(self.proves_zh),
            "does_not_prove_zh": list(DOES_NOT_PROVE_ZH),
            **({"error": self.unusable_reason} if self.unusable_reason else {}),
        }


def unusable(reason: str, *, trust_used: tuple[tuple[str, str], ...] = ()) -> Report:
    """A report for input that could not be examined at all."""
    return Report(checks=tuple(CheckResult(s.id, Status.SKIP, "input unusable",
                                              compose_zh(s.id, "skip", {}, unusable=True)) for s in CHECKS),
                  unusable_reason=reason, trust_used=trust_used)
