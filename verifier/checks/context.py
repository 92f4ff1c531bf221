"""What every check may look at, parsed once and shared.

Checks run independently (counsel needs every finding, not the first), but several of them need
the same parsed material: the proof, the valid timestamps, the anchor. The context parses each on
first use and keeps the result or the error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from verifier.chain_source import ChainSources
from verifier.checks.anchors import Anchor, AnchorResult, earliest_checked, judge_anchors
from verifier.errors import InvalidPackage, TiezhengError, TimestampError, VerificationError
from verifier.package import PROOF_PATH, TSA_CERTS_NAME, Package
from verifier.proof import InclusionProof, parse_proof
from verifier.report import Status
from verifier.timestamp import TimestampInfo, verify_timestamp
from verifier.trust import Trust, TrustedTSA
from verifier.tsa_chain import load_certificates

Outcome = tuple[Status, str]


class Skip(Exception):
    """Raised by a check that cannot run with the data given."""


@dataclass(frozen=True)
class ValidTimestamp:
    name: str
    info: TimestampInfo
    tsa: TrustedTSA


@dataclass
class Context:
    package: Package
    trust: Trust
    offline: bool = True
    #: Where to check anchors online; None offline. A single source answers for the chain it serves.
    chain: ChainSources | None = None
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    development: list[str] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)

    def flag_development(self, what: str) -> None:
        if what not in self.development:
            self.development.append(what)

    @cached_property
    def proof(self) -> InclusionProof:
        """The parsed proof.json. Raises Skip when the package is not sealed, VerificationError if bad."""
        if PROOF_PATH not in self.package.entries:
            raise Skip("package is not sealed yet (no proof/proof.json)")
        try:
            return parse_proof(self.package.read_json(PROOF_PATH))
        except InvalidPackage as exc:
            raise VerificationError(f"proof.json unreadable: {exc}") from exc

    @cached_property
    def timestamp_results(self) -> list[tuple[str, ValidTimestamp | TiezhengError]]:
        """Every timestamp token judged against every trusted TSA: a valid result or the error."""
        root = self.proof.root
        results: list[tuple[str, ValidTimestamp | TiezhengError]] = []
        for name in self.package.timestamp_names():
            number = name.removeprefix("proof/timestamp-").removesuffix(".tsr")
            try:
                token = self.package.read(name, 1 << 20)
                certs_name = f"proof/tsa-{number}.pem"
                extra = (load_certificates(self.package.read(certs_name, 1 << 20))
                         if certs_name in self.package.entries and TSA_CERTS_NAME.match(certs_name) else [])
            except TiezhengError as exc:
                results.append((name, exc))
                continue
            outcome: ValidTimestamp | TiezhengError = TimestampError("no TSA in the trust configuration")
            for tsa in self.trust.tsas:
                try:
                    info = verify_timestamp(token, root, list(tsa.roots), certificates=extra)
                except TiezhengError as exc:
                    outcome = exc
                    continue
                outcome = ValidTimestamp(name, info, tsa)
                break
            results.append((name, outcome))
        return results

    @property
    def valid_timestamps(self) -> list[ValidTimestamp]:
        return [r for _, r in self.timestamp_results if isinstance(r, ValidTimestamp)]

    @cached_property
    def anchor_results(self) -> list[AnchorResult]:
        """Each anchor file judged on its own (H5's sub-results). Raises Skip when not sealed."""
        return judge_anchors(self)

    @property
    def anchor(self) -> Anchor:
        """The anchor times are read from: the earliest one that was checked. VerificationError if none holds."""
        return earliest_checked(self.anchor_results)

    @cached_property
    def capture_ended(self) -> datetime:
        """When the capture (or upload) ended, from the manifest. Raises VerificationError if unreadable."""
        value = self.package.manifest.capture.get("ended_at")
        if not isinstance(value, str):
            raise VerificationError("manifest capture.ended_at is missing")
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise VerificationError(f"manifest capture.ended_at is not ISO 8601: {value!r}") from exc
        if moment.tzinfo is None:
            raise VerificationError("manifest capture.ended_at has no time zone")
        return moment
