"""The notice record: what a takedown notice says, as JSON data that drafts, PDFs and packages share.

A record is plain JSON (format ``tiezheng-notice/1``) because the sealed manifest carries it as is
and the verifier's N2 judges it with ``verifier.notice_rules``. ``Notice`` is the typed view the
evidence side builds it from. Versions: a correction or withdrawal is a new record whose
``previous`` is the fingerprint of the sealed version it replaces; nothing is ever edited.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from verifier.errors import TiezhengError
from verifier.notice_rules import DEFAULT_RULE_SETS, FINGERPRINT, NOTICE_FORMAT, unknown_rule_sets

ACTIONS = ("notice", "correction", "withdrawal")
NOTICE_ID_RANDOM_BYTES = 6
#: The guarantee the IP Guideline Art. 5 asks for, in both languages; the owner may give their own.
DEFAULT_GUARANTEE = ("本通知人保证：本通知内容及所附权利证明、侵权初步证据真实、合法、有效；"
                     "如因通知错误给对方造成损失，本通知人依法承担责任。\n"
                     "The notifier guarantees that this notice and the attached proof of right and "
                     "evidence of infringement are true, lawful and valid, and accepts liability "
                     "under law for loss caused by an erroneous notice.")


class NoticeError(TiezhengError, ValueError):
    """A notice that cannot be drafted, sent or imported as asked."""


def new_notice_id(now: datetime | None = None) -> str:
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return f"nt-{moment:%Y%m%dT%H%M%S}-{secrets.token_hex(NOTICE_ID_RANDOM_BYTES)}"


@dataclass(frozen=True)
class SealedRef:
    """A sealed evidence item the notice relies on: its id and fingerprint (hex)."""

    evidence_id: str
    fingerprint: str
    title: str = ""
    #: For an infringing address: the URL the capture shows.
    url: str = ""

    def to_json(self) -> dict[str, str]:
        data = {"evidence_id": self.evidence_id, "fingerprint": self.fingerprint, "title": self.title}
        if self.url:
            data["url"] = self.url
        return data


@dataclass(frozen=True)
class Owner:
    name: str = ""
    identifier: str = ""
    email: str = ""
    phone: str = ""
    address: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "identifier": self.identifier,
                "contact": {"email": self.email, "phone": self.phone, "address": self.address}}


@dataclass(frozen=True)
class Notice:
    notice_id: str
    owner: Owner
    right_proofs: Sequence[SealedRef] = ()
    #: Each infringing URL with the sealed capture that shows it (fingerprint empty when there is none yet).
    infringing: Sequence[SealedRef] = ()
    grounds: str = ""
    guarantee: str = ""
    guarantee_given: bool = False
    recipient: str = ""
    matter: str = ""
    rule_sets: Sequence[str] = DEFAULT_RULE_SETS
    action: str = "notice"
    version: int = 1
    #: The fingerprint of the sealed version this one corrects or withdraws.
    previous: str = ""
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise NoticeError(f"notice action {self.action!r} is not one of {', '.join(ACTIONS)}")
        unknown = unknown_rule_sets(self.rule_sets)
        if unknown:
            raise NoticeError(f"unknown rule set(s): {', '.join(unknown)}")
        if self.previous and not FINGERPRINT.match(self.previous):
            raise NoticeError("previous must be the 64-hex fingerprint of the sealed version it replaces")
        if (self.action != "notice") != bool(self.previous):
            raise NoticeError("a correction or withdrawal names the sealed version it replaces, and only they do")

    def to_json(self) -> dict[str, Any]:
        return {"format": NOTICE_FORMAT, "notice_id": self.notice_id, "action": self.action,
                "version": self.version, "previous": self.previous or None, "matter": self.matter or None,
                "created_at": self.created_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                "owner": self.owner.to_json(),
                "right_proofs": [p.to_json() for p in self.right_proofs],
                "infringing": [u.to_json() for u in self.infringing],
                "grounds": self.grounds,
                "guarantee": {"text": self.guarantee, "given": self.guarantee_given},
                "recipient": self.recipient, "rule_sets": list(self.rule_sets)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Notice:
        """The notice a record describes. Raises NoticeError for a record this version cannot read."""
        try:
            if data.get("format") != NOTICE_FORMAT:
                raise NoticeError(f"not a {NOTICE_FORMAT} record")
            owner, contact = data["owner"], data["owner"]["contact"]
            created = datetime.strptime(data["created_at"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
            return cls(
                notice_id=data["notice_id"], action=data["action"], version=int(data["version"]),
                previous=data.get("previous") or "", matter=data.get("matter") or "", created_at=created,
                owner=Owner(owner["name"], owner["identifier"], contact["email"], contact["phone"],
                            contact["address"]),
                right_proofs=tuple(SealedRef(**p) for p in data["right_proofs"]),
                infringing=tuple(SealedRef(**u) for u in data["infringing"]),
                grounds=data["grounds"], guarantee=data["guarantee"]["text"],
                guarantee_given=bool(data["guarantee"]["given"]), recipient=data["recipient"],
                rule_sets=tuple(data["rule_sets"]))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            if isinstance(exc, NoticeError):
                raise
            raise NoticeError(f"malformed notice record: {exc!r}") from exc
