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

from cryptography import x509

from verifier.chain_source import ChainSources
from verifier.checks.anchors import Anchor, AnchorResult, earliest_checked, judge_anchors
from verifier.errors import InvalidPackage, TiezhengError, TimestampError, VerificationError
from verifier.package import PROOF_PATH, TSA_CERTS_NAME, Package
from verifier.proof import InclusionProof, parse_proof
from verifier.timestamp import TimestampInfo, TimestampToken, parse_timestamp_token, verify_timestamp
from verifier.trust import Trust, TrustedTSA
from verifier.tsa_chain import load_certificates
from verifier.verdict import Status

Outcome = tuple[Status, str]

__all__ = ["Anchor", "Context", "Outcome", "Skip", "ValidTimestamp"]
#: Self-signed certificates tried per token when no trusted root accepts it; bounds a hostile
#: package's cost (a genuine token carries one root, if any).
MAX_OWN_ROOTS = 4


class Skip(TiezhengError):
    """Raised by a check that cannot run with the data given; ``reason`` becomes the check's reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ValidTimestamp:
    name: str
    info: TimestampInfo
    tsa: TrustedTSA


@dataclass
class Context:
    package: Package
    trust: Trust
    #: Where to check anchors online; None offline. A single source answers for the chain it serves.
    chain: ChainSources | None = None
    #: The moment of verification: an anchor claiming a block after it is implausible (T1 offline).
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    development: list[str] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    #: (check id, trust it lacked): see ``Report.missing_trust``.
    missing_trust: list[tuple[str, str]] = field(default_factory=list)
    #: (check id, what stayed a claim and how to check it): see ``Report.not_checked``.
    not_checked: list[tuple[str, str]] = field(default_factory=list)

    @property
    def offline(self) -> bool:
        """Whether anchors are judged without a node: no chain source was given."""
        return self.chain is None

    def flag_development(self, what: str) -> None:
        if what not in self.development:
            self.development.append(what)

    def lack_trust(self, check_id: str, what: str) -> Skip:
        """Record that ``check_id`` cannot judge without trust in ``what``; return the Skip to raise."""
        self.missing_trust.append((check_id, what))
        return Skip(f"cannot judge: {what} is not in the trust given (get the operator's trust file, "
                    "e.g. from /.well-known/tiezheng/trust.toml, and pass it with --trust FILE)")

    def leave_unchecked(self, check_id: str, what: str) -> None:
        """Record a claim ``check_id`` took on trust because it could not check it here."""
        if (check_id, what) not in self.not_checked:
            self.not_checked.append((check_id, what))

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
    def timestamp_tokens(self) -> list[tuple[str, tuple[TimestampToken, list[x509.Certificate]] | TiezhengError]]:
        """Every token parsed once, with the certificates the package bundles for it, or the error."""
        tokens: list[tuple[str, tuple[TimestampToken, list[x509.Certificate]] | TiezhengError]] = []
        for name in self.package.timestamp_names():
            try:
                tokens.append((name, (parse_timestamp_token(self.package.read(name, 1 << 20)),
                                      self._bundled_certificates(name))))
            except TiezhengError as exc:
                tokens.append((name, exc))
        return tokens

    @cached_property
    def timestamp_results(self) -> list[tuple[str, ValidTimestamp | TiezhengError]]:
        """Every timestamp token judged against every trusted TSA: a valid result or the error.

        A package's imprint is SHA-256 by definition, so the legacy SHA-1 policy stays off here.
        """
        root = self.proof.root
        results: list[tuple[str, ValidTimestamp | TiezhengError]] = []
        for name, parsed in self.timestamp_tokens:
            if isinstance(parsed, TiezhengError):
                results.append((name, parsed))
                continue
            token, extra = parsed
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

    @cached_property
    def untrusted_timestamps(self) -> list[tuple[str, TimestampInfo, x509.Certificate]]:
        """Tokens that no trusted TSA accepts but that verify up to a root the package itself carries.

        Such a token may be perfectly good: only the trust to judge it is missing ("cannot judge").
        A token that fails even against its own root is broken, whatever the trust.
        """
        found = []
        parsed_tokens = dict(self.timestamp_tokens)
        for name, outcome in self.timestamp_results:
            parsed = parsed_tokens[name]
            if isinstance(outcome, ValidTimestamp) or isinstance(parsed, TiezhengError):
                continue
            token, extra = parsed
            candidates = [*extra, *token.certificates]
            for root in [c for c in candidates if c.issuer == c.subject][:MAX_OWN_ROOTS]:
                try:
                    info = verify_timestamp(token, self.proof.root, [root], certificates=extra)
                except TiezhengError:
                    continue
                found.append((name, info, root))
                break
        return found

    def _bundled_certificates(self, token_name: str) -> list[x509.Certificate]:
        number = token_name.removeprefix("proof/timestamp-").removesuffix(".tsr")
        certs_name = f"proof/tsa-{number}.pem"
        if certs_name in self.package.entries and TSA_CERTS_NAME.match(certs_name):
            return load_certificates(self.package.read(certs_name, 1 << 20))
        return []

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

    @property
    def anchor_online(self) -> bool:
        """True when a node confirmed the anchor times are read from (H5 passed it online).

        Offline, or for a chain no ``--rpc`` node answers for, its block time stays a claim.
        """
        try:
            used = self.anchor
        except (Skip, TiezhengError):
            return False
        return any(r.anchor is used and r.status is Status.PASS for r in self.anchor_results)

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

