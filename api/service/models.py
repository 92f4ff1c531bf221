"""The service's data: tenants, API keys, evidence and audit events (tables), and the API's views.

Per resource, as in the FastAPI full-stack template: ``XBase`` (shared fields), ``XCreate`` (what a
client sends), ``X(table=True)`` (the row) and ``XPublic`` (what a client gets back).

The service's tables live in their own metadata (``api_metadata``), migrated by Alembic
(api/migrations). Batches and anchors are *not* duplicated here: their rows are the sealing store's
``seal_item`` / ``seal_batch`` (anchor/store.py), created by ``anchor.store.make_engine``; this module
only has their public views (``BatchPublic``, ``AnchorPublic``). An evidence row links to its
``SealItem`` by ``evidence_id``, the package's own id.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import StringConstraints
from sqlalchemy import Column, Text, UniqueConstraint
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

#: Longest note a client may attach to evidence; it goes into the signed manifest.
MAX_NOTE_CHARS = 2000
#: URLs per capture request.
MAX_CAPTURE_URLS = 20
MAX_URL_CHARS = 2048
#: A seller or account id, or a shop URL: free text, bounded (it goes into the signed manifest).
MAX_SUBJECT_CHARS = 500

api_registry = registry()
api_metadata = api_registry.metadata


def utcnow() -> datetime:
    return datetime.now(UTC)


class ApiTable(SQLModel, registry=api_registry):
    """Base of the service's tables: keeps them out of ``SQLModel.metadata`` (the sealing store's)."""


class EvidenceStatus(StrEnum):
    PENDING = "pending"
    SEALED = "sealed"
    FAILED = "failed"


class EvidenceKind(StrEnum):
    UPLOAD = "upload"
    WEB_CAPTURE = "web-capture"
    NOTICE = "notice"
    NOTICE_REPLY = "notice-reply"
    STREAM = "stream"


# -- tenants ---------------------------------------------------------------------------------------

class TenantBase(SQLModel):
    name: str = Field(min_length=1, max_length=200)


class TenantCreate(TenantBase):
    pass


class Tenant(ApiTable, TenantBase, table=True):
    __tablename__ = "tenant"

    id: int | None = Field(default=None, primary_key=True)
    #: The tenant name goes into each manifest's requester record, so it is unique.
    name: str = Field(max_length=200, unique=True, index=True)
    created_at: datetime = Field(default_factory=utcnow)


class TenantPublic(TenantBase):
    id: int
    created_at: datetime


# -- API keys --------------------------------------------------------------------------------------

class ApiKeyBase(SQLModel):
    label: str = Field(default="", max_length=200)


class ApiKey(ApiTable, ApiKeyBase, table=True):
    """A key is ``tzk_<prefix>_<secret>``; only the prefix (to find the row) and an HMAC are kept."""

    __tablename__ = "api_key"

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenant.id", index=True)
    prefix: str = Field(max_length=32, unique=True, index=True)
    key_hash: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None


class ApiKeyPublic(ApiKeyBase):
    id: int
    tenant_id: int
    prefix: str
    created_at: datetime
    revoked_at: datetime | None


# -- evidence --------------------------------------------------------------------------------------

class EvidenceBase(SQLModel):
    note: str = Field(default="", max_length=MAX_NOTE_CHARS)


#: An http(s) URL; the pattern is in the OpenAPI schema too (JSON Schema regexes have no flags).
HttpUrlText = Annotated[str, StringConstraints(pattern=r"^[Hh][Tt][Tt][Pp][Ss]?://[^\s]+$", max_length=MAX_URL_CHARS)]


class CaptureCreate(EvidenceBase):
    urls: list[HttpUrlText] = Field(min_length=1, max_length=MAX_CAPTURE_URLS)
    #: File the captures under this matter (``matter`` in their manifests too).
    matter: str | None = Field(default=None, max_length=40)
    subject: str | None = Field(default=None, max_length=MAX_SUBJECT_CHARS)
    #: Scripted steps run before the screenshot, as ``tiezheng capture --steps`` takes them: lines
    #: ("click #more") or objects ({"action": "click", "selector": "#more"}); checked when accepted.
    steps: list[str | dict[str, str | int]] | None = Field(default=None, max_length=20)
    #: Record the session video (evidence/session.webm).
    video: bool = True
    #: Capture logged in with one of the tenant's stored sessions (``/v1/sessions``), by name.
    session: str | None = Field(default=None, max_length=64)
    #: Capture through this configured egress proxy (``TIEZHENG_EGRESS_<NAME>`` on the server).
    egress: str | None = Field(default=None, max_length=40)
    #: Also store every embedded image, audio and video as its own artifact (``media/``).
    save_media: bool = False


class Evidence(ApiTable, EvidenceBase, table=True):
    """One item a tenant asked for: an upload (built at once) or a capture (built by a job)."""

    __tablename__ = "evidence"

    #: The public id. For uploads it is the package's evidence id; a capture gets it when accepted,
    #: before the package (and its own evidence id) exists.
    id: str = Field(primary_key=True, max_length=100)
    tenant_id: int = Field(foreign_key="tenant.id", index=True)
    api_key_id: int | None = Field(default=None, foreign_key="api_key.id")
    kind: str = Field(max_length=20)
    #: The URL captured, or the uploaded file names: what the dashboard shows and ``q`` searches.
    title: str = Field(default="", max_length=4000)
    note: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    #: The package's evidence id; links to ``seal_item.evidence_id``. None until the package exists.
    evidence_id: str | None = Field(default=None, max_length=100, unique=True, index=True)
    fingerprint: str | None = Field(default=None, max_length=64)
    #: Blob (sha256) of the package as accepted, and of the sealed package once sealing attached proofs.
    package_sha256: str | None = Field(default=None, max_length=64)
    sealed_sha256: str | None = Field(default=None, max_length=64)
    error: str | None = Field(default=None, sa_column=Column(Text))
    created_at: datetime = Field(default_factory=utcnow, index=True)
    packaged_at: datetime | None = None
    #: The capture's lease: the one worker running it, and until when (renewed while it runs).
    lease_owner: str | None = Field(default=None, max_length=200)
    lease_until: datetime | None = None
    #: When the relay last handed this capture to the queue (None: never).
    published_at: datetime | None = None
    #: The seller, account or shop the capture is about (goes into the manifest as ``subject``).
    subject: str | None = Field(default=None, max_length=MAX_SUBJECT_CHARS)
    #: A capture's scripted steps as checked when accepted (JSON), and whether it records the session video.
    capture_steps: str | None = Field(default=None, sa_column=Column(Text))
    capture_video: bool = Field(default=True)


class TimestampPublic(SQLModel):
    tsa: str
    gen_time: str


class AnchorPublic(SQLModel):
    chain_id: int
    tx_hash: str
    block_number: int
    block_time_utc: str | None = None
    confirmations: int


class BatchPublic(SQLModel):
    id: str
    state: str
    tree_size: int
    root: str
    timestamps: list[TimestampPublic] = []
    anchor: AnchorPublic | None = None
    #: Every confirmed anchor, one per chain (``anchor`` is the first: the package's proof/anchor.json).
    anchors: list[AnchorPublic] = []


class EvidencePublic(EvidenceBase):
    id: str
    kind: str
    title: str
    status: EvidenceStatus
    evidence_id: str | None
    fingerprint: str | None
    package_sha256: str | None
    error: str | None
    batch_id: str | None = None
    leaf_index: int | None = None
    batch: BatchPublic | None = None
    created_at: datetime
    packaged_at: datetime | None
    sealed_at: datetime | None = None


class EvidencesPublic(SQLModel):
    data: list[EvidencePublic]
    count: int
    page: int
    pages: int


class Accepted(SQLModel):
    evidence_ids: list[str]
    status: EvidenceStatus = EvidenceStatus.PENDING


# -- reliability: the outbox and idempotency keys -------------------------------------------------

class OutboxMessage(ApiTable, table=True):
    """A queue message written in the transaction of the row it is about; the relay publishes it.

    Unsent while ``sent_at`` is None. A relay claims a row for a short while (``claimed_by`` /
    ``claimed_until``) so that several API processes never publish it at the same time.
    """

    __tablename__ = "outbox"

    id: int | None = Field(default=None, primary_key=True)
    topic: str = Field(max_length=40)
    #: The evidence row the message is about (the only payload today's topics need).
    target: str = Field(max_length=100, index=True)
    created_at: datetime = Field(default_factory=utcnow)
    claimed_by: str | None = Field(default=None, max_length=200)
    claimed_until: datetime | None = None
    sent_at: datetime | None = Field(default=None, index=True)


class IdempotencyRecord(ApiTable, table=True):
    """The answer given to a request that carried ``Idempotency-Key``, per tenant, to replay on retry."""

    __tablename__ = "idempotency_key"
    __table_args__ = (UniqueConstraint("tenant_id", "key", name="uq_idempotency_tenant_key"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenant.id")
    key: str = Field(max_length=255)
    #: sha256 of the request (endpoint and body): a reuse of the key for another request is refused.
    request_sha256: str = Field(max_length=64)
    status_code: int
    evidence_ids: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)


# -- matters and watches -------------------------------------------------------------------------
# The tables only; what they mean and how they change is in api/service/matters.py and watches.py.

class Matter(ApiTable, table=True):
    """A case: one tenant's evidence, watches and notes, with a hash-chained log of what happened to it."""

    __tablename__ = "matter"

    id: str = Field(primary_key=True, max_length=40)
    tenant_id: int = Field(foreign_key="tenant.id", index=True)
    title: str = Field(max_length=200)
    #: The court's or the firm's own case number, if any.
    reference: str = Field(default="", max_length=200)
    created_at: datetime = Field(default_factory=utcnow)
    #: sha256 (hex) of the newest log entry, and how many there are: appending is a compare-and-set on both.
    log_head: str = Field(max_length=64)
    log_length: int = 0


class MatterLogEntry(ApiTable, table=True):
    """One append-only line of a matter's log; ``entry_sha256`` covers the line and the previous line's hash."""

    __tablename__ = "matter_log"
    __table_args__ = (UniqueConstraint("matter_id", "seq", name="uq_matter_log_seq"),)

    id: int | None = Field(default=None, primary_key=True)
    matter_id: str = Field(foreign_key="matter.id", index=True, max_length=40)
    seq: int
    at: datetime = Field(default_factory=utcnow)
    action: str = Field(max_length=40)
    #: Canonical JSON (RFC 8785) of the entry's facts: what the hash covers, byte for byte.
    detail: str = Field(sa_column=Column(Text, nullable=False))
    previous_sha256: str = Field(max_length=64)
    entry_sha256: str = Field(max_length=64)


class MatterFiling(ApiTable, table=True):
    """Which matter an evidence item is filed under now (one at a time; moves are in the matter logs)."""

    __tablename__ = "matter_filing"

    #: The evidence's public id (``evidence.id``; the package's evidence id on the embedded CLI).
    evidence_ref: str = Field(primary_key=True, max_length=100)
    tenant_id: int = Field(foreign_key="tenant.id", index=True)
    matter_id: str = Field(foreign_key="matter.id", index=True, max_length=40)
    filed_at: datetime = Field(default_factory=utcnow)


class WatchState(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    REMOVED = "removed"
    #: Its ``until`` has passed.
    ENDED = "ended"


class Watch(ApiTable, table=True):
    """A page captured again every ``every_seconds``; each run is a full capture chained by ``previous``."""

    __tablename__ = "watch"

    id: str = Field(primary_key=True, max_length=40)
    tenant_id: int = Field(foreign_key="tenant.id", index=True)
    api_key_id: int | None = Field(default=None, foreign_key="api_key.id")
    url: str = Field(max_length=MAX_URL_CHARS)
    every_seconds: int
    until: datetime | None = None
    matter_id: str | None = Field(default=None, foreign_key="matter.id", max_length=40)
    subject: str | None = Field(default=None, max_length=MAX_SUBJECT_CHARS)
    #: JSON object NAME -> CSS selector: the key fields change detection compares.
    fields: str = Field(default="{}", sa_column=Column(Text, nullable=False, default="{}"))
    state: str = Field(default=WatchState.ACTIVE.value, max_length=20, index=True)
    #: The first slot not yet decided (run or missed); the scheduler moves it on with a compare-and-set.
    next_slot: datetime = Field(index=True)
    #: The fingerprint (hex) of the newest run's package: the next run's ``previous``.
    last_fingerprint: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    #: Set for a stream watch: each run records the live stream at ``url`` for this many seconds.
    stream_seconds: int | None = None


class SlotState(StrEnum):
    QUEUED = "queued"
    DONE = "done"
    FAILED = "failed"
    #: Not run: the scheduler was down past the slot, or the previous run had not finished.
    MISSED = "missed"


class WatchSlot(ApiTable, table=True):
    """One scheduled moment of a watch. The unique (watch, time) pair is what makes a slot run at most once."""

    __tablename__ = "watch_slot"
    __table_args__ = (UniqueConstraint("watch_id", "slot_time", name="uq_watch_slot"),)

    id: int | None = Field(default=None, primary_key=True)
    watch_id: str = Field(foreign_key="watch.id", index=True, max_length=40)
    slot_time: datetime
    state: str = Field(max_length=20)
    reason: str | None = Field(default=None, max_length=200)
    #: The capture's evidence row (``evidence.id``) for a slot that ran.
    evidence_ref: str | None = Field(default=None, max_length=100, index=True)
    fingerprint: str | None = Field(default=None, max_length=64)
    recorded_at: datetime = Field(default_factory=utcnow)


class MatterCreate(SQLModel):
    title: str = Field(min_length=1, max_length=200)
    reference: str = Field(default="", max_length=200)


class MatterPublic(SQLModel):
    id: str
    title: str
    reference: str
    created_at: datetime
    #: sha256 of the newest log line: quoting it pins the whole log up to that line.
    log_head: str
    log_length: int
    evidence: list[str] = []


class MatterLogPublic(SQLModel):
    seq: int
    at: datetime
    action: str
    detail: dict[str, Any]
    previous_sha256: str
    entry_sha256: str


class FilingMove(SQLModel):
    """Move evidence to another matter (its sealed package is unchanged; both matter logs record it)."""

    evidence_id: str = Field(min_length=1, max_length=100)


class WatchCreate(SQLModel):
    url: HttpUrlText
    #: "6h", "30m", "1d" or a number of seconds.
    every: str = Field(min_length=1, max_length=20)
    until: datetime | None = None
    matter: str | None = Field(default=None, max_length=40)
    subject: str | None = Field(default=None, max_length=MAX_SUBJECT_CHARS)
    #: NAME -> CSS selector of the key fields to compare between runs (price, sales count, seller).
    fields: dict[str, str] = Field(default_factory=dict)


class WatchSlotPublic(SQLModel):
    slot_time: datetime
    state: str
    reason: str | None
    evidence_id: str | None
    fingerprint: str | None


class WatchPublic(SQLModel):
    id: str
    url: str
    every_seconds: int
    until: datetime | None
    matter: str | None
    subject: str | None
    fields: dict[str, str]
    state: str
    next_slot: datetime
    last_fingerprint: str | None
    created_at: datetime
    stream_seconds: int | None = None
    slots: list[WatchSlotPublic] = []


# -- audit -----------------------------------------------------------------------------------------

class AuditEvent(ApiTable, table=True):
    """One action: who (tenant, key or ``system``), what, on what, with which outcome. No secrets."""

    __tablename__ = "audit_event"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, index=True)
    tenant_id: int | None = Field(default=None, index=True)
    api_key_id: int | None = None
    actor: str = Field(default="api", max_length=40)
    action: str = Field(max_length=80, index=True)
    target: str | None = Field(default=None, max_length=200)
    outcome: int = 200
    client: str | None = Field(default=None, max_length=100)
    detail: str | None = Field(default=None, sa_column=Column(Text))


# -- errors ----------------------------------------------------------------------------------------

class ErrorDetail(SQLModel):
    code: str
    message: str
    details: list[Any] | None = None


class ErrorResponse(SQLModel):
    error: ErrorDetail
