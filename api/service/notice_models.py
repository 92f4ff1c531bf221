"""The notice tables: each version of a notice, and each reply imported to it.

A notice is never edited once sent: a correction or withdrawal is a new version row, whose record
names the fingerprint of the sealed version before it. Rows with ``tenant_id`` None belong to the
embedded CLI (no tenants); every lookup filters on the caller's tenant, that one included.
Kept beside ``models`` (same registry, same migrations) so the notice tables stay one idea.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from api.service.models import ApiTable, utcnow

MAX_NOTICE_TEXT = 20_000


class NoticeVersion(ApiTable, table=True):
    __tablename__ = "notice_version"
    __table_args__ = (UniqueConstraint("notice_id", "version", name="uq_notice_version"),)

    #: ``<notice_id>.v<version>``.
    id: str = Field(primary_key=True, max_length=120)
    notice_id: str = Field(index=True, max_length=100)
    version: int
    tenant_id: int | None = Field(default=None, foreign_key="tenant.id", index=True)
    #: The matter this notice serves (opaque id; the matter's watch re-captures when the window closes).
    matter: str | None = Field(default=None, max_length=100, index=True)
    action: str = Field(max_length=20)
    #: ``draft`` until sent, then ``sent``.
    status: str = Field(default="draft", max_length=20)
    #: The notice record (JSON, format tiezheng-notice/1) as drafted and, once sent, as sealed.
    record: str = Field(sa_column=Column(Text, nullable=False))
    recipient: str = Field(default="", max_length=320)
    #: The response window: ``15d``, ``20wd`` or an end date.
    window: str = Field(default="15d", max_length=20)
    evidence_id: str | None = Field(default=None, max_length=100)
    fingerprint: str | None = Field(default=None, max_length=64)
    queue_id: str | None = Field(default=None, max_length=200)
    sent_at: datetime | None = None
    #: The last day of the response window (ISO date, China Standard Time).
    due: str | None = Field(default=None, max_length=10)
    #: When the closed window was handed to the matter's watch for a fresh capture (``take_closed_windows``).
    recheck_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)


class NoticeReply(ApiTable, table=True):
    __tablename__ = "notice_reply"

    evidence_id: str = Field(primary_key=True, max_length=100)
    notice_id: str = Field(index=True, max_length=100)
    tenant_id: int | None = Field(default=None, foreign_key="tenant.id", index=True)
    fingerprint: str = Field(max_length=64)
    #: pass, fail or none (unsigned), as found at import; N1 checks it again from the package.
    dkim_status: str = Field(max_length=10)
    dkim_domain: str | None = Field(default=None, max_length=255)
    #: sha256 of the message as received: the same message is imported once, however often it is polled.
    message_sha256: str = Field(default="", max_length=64, index=True)
    received_at: datetime = Field(default_factory=utcnow)


# -- the API's views -------------------------------------------------------------------------------

class InfringingIn(SQLModel):
    url: str = Field(default="", max_length=2048)
    #: The sealed capture that shows the URL; the URL may be left out then (the capture's is used).
    evidence_id: str | None = Field(default=None, max_length=100)


class NoticeCreate(SQLModel):
    owner_name: str = Field(default="", max_length=500)
    owner_identifier: str = Field(default="", max_length=200)
    owner_email: str = Field(default="", max_length=320)
    owner_phone: str = Field(default="", max_length=100)
    owner_address: str = Field(default="", max_length=1000)
    #: Evidence ids of sealed uploads that prove the right.
    right_proofs: list[str] = Field(default_factory=list, max_length=100)
    infringing: list[InfringingIn] = Field(default_factory=list, max_length=500)
    grounds: str = Field(default="", max_length=MAX_NOTICE_TEXT)
    #: The owner's own guarantee text; empty: the standard bilingual guarantee.
    guarantee: str = Field(default="", max_length=MAX_NOTICE_TEXT)
    guarantee_given: bool = False
    recipient: str = Field(default="", max_length=320)
    matter: str | None = Field(default=None, max_length=100)
    rule_sets: list[str] | None = None
    window: str = Field(default="15d", max_length=20)
    #: Make this a correction of the notice with this id (its last sent version).
    corrects: str | None = Field(default=None, max_length=100)


class NoticeSend(SQLModel):
    to: str | None = Field(default=None, max_length=320)
    allow_incomplete: bool = False


class NoticeWithdraw(SQLModel):
    reason: str = Field(default="", max_length=MAX_NOTICE_TEXT)


class NoticeVersionPublic(SQLModel):
    notice_id: str
    version: int
    action: str
    status: str
    matter: str | None
    recipient: str
    window: str
    evidence_id: str | None
    fingerprint: str | None
    queue_id: str | None
    sent_at: datetime | None
    due: str | None
    previous: str | None
    completeness: list[dict[str, object]]


class NoticeReplyPublic(SQLModel):
    evidence_id: str
    fingerprint: str
    dkim_status: str
    dkim_domain: str | None
    received_at: datetime


class NoticePublic(SQLModel):
    notice_id: str
    versions: list[NoticeVersionPublic]
    replies: list[NoticeReplyPublic]
