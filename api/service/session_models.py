"""The tables of logged-in and routed captures: a tenant's stored browser sessions, and what one
capture request chose (session, egress, saved media) for the job that runs it later.

A session row holds the storage state only encrypted (``api.service.browser_sessions``); its
plaintext exists in memory during a capture and nowhere else.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from api.service.models import ApiTable, utcnow

MAX_SESSION_NAME_CHARS = 64
MAX_ACCOUNT_CHARS = 200
SESSION_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


class BrowserSessionRow(ApiTable, table=True):
    """One stored session: who it logs in as (declared), its hash, and the sealed storage state."""

    __tablename__ = "browser_session"
    __table_args__ = (UniqueConstraint("tenant_id", "name", name="uq_browser_session_name"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant_id: int = Field(foreign_key="tenant.id", index=True)
    name: str = Field(max_length=MAX_SESSION_NAME_CHARS)
    account: str = Field(max_length=MAX_ACCOUNT_CHARS)
    #: sha256 (hex) of the storage state's bytes as supplied: what the manifest of each capture states.
    state_sha256: str = Field(max_length=64)
    cookies: int = 0
    origins: int = 0
    #: base64 of nonce ‖ AES-256-GCM ciphertext, bound to (tenant, name) as associated data.
    sealed_state: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)


class BrowserSessionCreate(SQLModel):
    name: str = Field(min_length=1, max_length=MAX_SESSION_NAME_CHARS)
    #: The account the session is logged in as, as the requester declares it (goes into manifests).
    account: str = Field(min_length=1, max_length=MAX_ACCOUNT_CHARS)
    #: Playwright's storage state: ``{"cookies": [...], "origins": [...]}``.
    storage_state: dict[str, Any]


class BrowserSessionPublic(SQLModel):
    """What a client sees of a stored session: never a cookie or a value."""

    name: str
    account: str
    state_sha256: str
    cookies: int
    origins: int
    created_at: datetime


class CaptureChoice(ApiTable, table=True):
    """What a capture request chose beyond its URL, kept for the job that runs it."""

    __tablename__ = "capture_choice"

    evidence_row_id: str = Field(primary_key=True, foreign_key="evidence.id", max_length=100)
    session_id: int | None = Field(default=None, foreign_key="browser_session.id")
    #: The session's name as chosen; kept when the session is removed, so the capture fails, not runs logged out.
    session_name: str | None = Field(default=None, max_length=MAX_SESSION_NAME_CHARS)
    egress: str | None = Field(default=None, max_length=40)
    save_media: bool = False
