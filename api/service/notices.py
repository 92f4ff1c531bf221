"""Notices, the service's one home for them: draft, send, reply, withdraw, show. The web and the CLI call these.

Every version of a notice is a row (``notice_models.NoticeVersion``); a sent version is also a sealed
evidence item of kind ``notice``, accepted through ``pipeline.accept`` like any other, and an imported
reply one of kind ``notice-reply``. Nothing sent is edited: a correction or a withdrawal is a new
version whose record names the fingerprint of the sealed version before it.

The caller is a tenant of the service (``Caller.of_principal``) or the embedded CLI (``Caller.local``,
tenant None); every read filters on the caller's tenant, so one tenant never sees another's notices
(the answer for "absent" and "another tenant's" is the same 404).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from api.service import crud, matters, pipeline
from api.service.errors import ApiError, not_found
from api.service.models import Evidence, EvidenceKind
from api.service.notice_models import (
    NoticeCreate,
    NoticePublic,
    NoticeReply,
    NoticeReplyPublic,
    NoticeVersion,
    NoticeVersionPublic,
)
from api.service.settings import Settings

if TYPE_CHECKING:
    from api.service.blobs import BlobBackend
    from api.service.security import Principal
    from evidence.notices.dns_lookup import Nameserver
    from evidence.notices.imap_poll import ImapConfig
    from evidence.notices.message import DkimKey
    from evidence.notices.model import Notice
    from evidence.notices.smtp_send import SmtpConfig
    from evidence.operator_key import OperatorKey
    from evidence.upload import BuiltPackage
    from verifier.package import Requester


@dataclass(frozen=True)
class Caller:
    """Whose notices: a tenant (with the key it called with), or the embedded CLI (``tenant_id`` None)."""

    tenant_id: int | None
    requester: Requester
    api_key_id: int | None = None

    @classmethod
    def local(cls) -> Caller:
        return cls(tenant_id=None, requester=pipeline.local_requester())

    @classmethod
    def of_principal(cls, who: Principal) -> Caller:
        from api.service.jobs import requester_named

        return cls(tenant_id=who.tenant_id, requester=requester_named(who.tenant_name, who.key_prefix),
                   api_key_id=who.api_key_id)


@dataclass(frozen=True)
class NoticeDesk:
    """What notices need of a running host: settings, database, operator key, and the blob store (service)."""

    settings: Settings
    engine: Engine
    operator: OperatorKey
    blobs: BlobBackend | None = None

    @classmethod
    def local(cls, settings: Settings) -> NoticeDesk:
        """The embedded CLI's desk: the data dir's database (migrated) and operator key."""
        from api.service.db import open_database
        from api.service.runtime import operator_for

        return cls(settings=settings, engine=open_database(settings), operator=operator_for(settings))


# -- reading ---------------------------------------------------------------------------------------

def _mine(statement: Any, caller: Caller, column: Any) -> Any:
    return statement.where(column.is_(None) if caller.tenant_id is None else column == caller.tenant_id)


def _versions(session: Session, caller: Caller, notice_id: str) -> list[NoticeVersion]:
    query = _mine(select(NoticeVersion).where(NoticeVersion.notice_id == notice_id), caller,
                  col(NoticeVersion.tenant_id))
    rows = list(session.exec(query.order_by(col(NoticeVersion.version))).all())
    if not rows:
        raise not_found("notice")
    return rows


def _last_sent(rows: list[NoticeVersion]) -> NoticeVersion:
    sent = [r for r in rows if r.status == "sent"]
    if not sent:
        raise ApiError(409, "notice_not_sent", f"notice {rows[0].notice_id} has no sent version yet")
    return sent[-1]


def _version_public(row: NoticeVersion) -> NoticeVersionPublic:
    from verifier.notice_rules import judge

    record = json.loads(row.record)
    return NoticeVersionPublic(
        notice_id=row.notice_id, version=row.version, action=row.action, status=row.status, matter=row.matter,
        recipient=row.recipient, window=row.window, evidence_id=row.evidence_id, fingerprint=row.fingerprint,
        queue_id=row.queue_id, sent_at=row.sent_at, due=row.due, previous=record.get("previous"),
        completeness=[r.to_json() for r in judge(record)])


def show(desk: NoticeDesk, caller: Caller, notice_id: str) -> NoticePublic:
    """Every version of the notice (completeness, deadline) and every reply imported to it."""
    with Session(desk.engine) as session:
        rows = _versions(session, caller, notice_id)
        replies = session.exec(_mine(select(NoticeReply).where(NoticeReply.notice_id == notice_id), caller,
                                     col(NoticeReply.tenant_id)).order_by(col(NoticeReply.received_at))).all()
        return NoticePublic(notice_id=notice_id, versions=[_version_public(r) for r in rows],
                            replies=[NoticeReplyPublic.model_validate(r, from_attributes=True) for r in replies])


# -- drafting --------------------------------------------------------------------------------------

def _sealed_item(session: Session, caller: Caller, evidence_id: str) -> tuple[str, str]:
    """(fingerprint if sealed else "", the URL it captured or "") of the caller's evidence item."""
    from anchor.store import ItemState, SealItem

    item = session.exec(select(SealItem).where(SealItem.evidence_id == evidence_id)).first()
    url = ""
    if caller.tenant_id is not None:
        row = session.exec(select(Evidence).where(Evidence.tenant_id == caller.tenant_id,
                                                  Evidence.evidence_id == evidence_id)).first()
        if row is None:
            raise ApiError(422, "unknown_evidence", f"no evidence {evidence_id} of yours")
        url = row.title if row.kind == EvidenceKind.WEB_CAPTURE else ""
    elif item is None:
        raise ApiError(422, "unknown_evidence", f"no evidence {evidence_id} in this data dir")
    else:
        url = _captured_url(item.package_path)
    sealed = item is not None and item.state == ItemState.ATTACHED
    return (item.fingerprint if sealed and item is not None else ""), url


def _captured_url(package_path: str) -> str:
    from verifier.errors import InvalidPackage
    from verifier.package import open_package

    try:
        manifest = open_package(package_path).manifest
    except InvalidPackage:
        return ""
    return str(manifest.target.get("requested_url") or "") if manifest.kind == "web-capture" else ""


def _notice_of(session: Session, caller: Caller, body: NoticeCreate, *, notice_id: str, version: int,
               action: str, previous: str) -> Notice:
    from evidence.notices.model import DEFAULT_GUARANTEE, Notice, NoticeError, Owner, SealedRef
    from verifier.notice_rules import DEFAULT_RULE_SETS

    proofs = []
    for evidence_id in body.right_proofs:
        fingerprint, _ = _sealed_item(session, caller, evidence_id)
        proofs.append(SealedRef(evidence_id, fingerprint, title=evidence_id))
    infringing = []
    for item in body.infringing:
        if item.evidence_id:
            fingerprint, url = _sealed_item(session, caller, item.evidence_id)
            infringing.append(SealedRef(item.evidence_id, fingerprint, url=item.url or url))
        else:
            infringing.append(SealedRef("", "", url=item.url))
    try:
        return Notice(
            notice_id=notice_id, version=version, action=action, previous=previous,
            owner=Owner(body.owner_name, body.owner_identifier, body.owner_email, body.owner_phone,
                        body.owner_address),
            right_proofs=tuple(proofs), infringing=tuple(infringing), grounds=body.grounds,
            guarantee=body.guarantee or DEFAULT_GUARANTEE, guarantee_given=body.guarantee_given,
            recipient=body.recipient, matter=body.matter or "",
            rule_sets=tuple(body.rule_sets) if body.rule_sets else DEFAULT_RULE_SETS)
    except NoticeError as exc:
        raise ApiError(422, "invalid_notice", str(exc)) from None


def _check_window(window: str) -> None:
    from evidence.notices.deadline import Window
    from evidence.notices.model import NoticeError

    try:
        Window.parse(window)
    except NoticeError as exc:
        raise ApiError(422, "invalid_window", str(exc)) from None


def draft(desk: NoticeDesk, caller: Caller, body: NoticeCreate, *, client: str = "cli") -> NoticeVersionPublic:
    """Record a draft: a new notice, or with ``corrects`` a correction of a sent one. Nothing is sent."""
    from evidence.notices.model import new_notice_id

    _check_window(body.window)
    with Session(desk.engine) as session:
        if body.matter:
            matters.get(session, tenant_id=_matter_tenant(session, caller), matter_id=body.matter)
        if body.corrects:
            rows = _versions(session, caller, body.corrects)
            previous = _last_sent(rows)
            notice = _notice_of(session, caller, body, notice_id=body.corrects, version=rows[-1].version + 1,
                                action="correction", previous=previous.fingerprint or "")
        else:
            notice = _notice_of(session, caller, body, notice_id=new_notice_id(), version=1, action="notice",
                                previous="")
        row = _store(session, caller, notice, window=body.window)
        crud.record_audit(session, action="notice.draft", tenant_id=caller.tenant_id, api_key_id=caller.api_key_id,
                          target=row.id, outcome=201, client=client)
        session.commit()
        return _version_public(row)


def _store(session: Session, caller: Caller, notice: Notice, *, window: str) -> NoticeVersion:
    row = NoticeVersion(id=f"{notice.notice_id}.v{notice.version}", notice_id=notice.notice_id,
                        version=notice.version, tenant_id=caller.tenant_id, matter=notice.matter or None,
                        action=notice.action, record=json.dumps(notice.to_json(), ensure_ascii=False),
                        recipient=notice.recipient, window=window)
    session.add(row)
    session.flush()
    return row


# -- sending ---------------------------------------------------------------------------------------

def smtp_config(settings: Settings) -> SmtpConfig:
    """The relay from ``TIEZHENG_SMTP_*``. Raises ApiError 409 when none is configured: not a server
    fault, and no retry helps until the operator configures one."""
    from evidence.notices.smtp_send import SmtpConfig

    if not settings.smtp_host or not settings.smtp_from:
        raise ApiError(409, "smtp_not_configured", "sending notices needs TIEZHENG_SMTP_HOST and TIEZHENG_SMTP_FROM")
    return SmtpConfig(host=settings.smtp_host, port=settings.smtp_port, starttls=settings.smtp_starttls,
                      username=settings.smtp_user or "",
                      password=settings.smtp_password.get_secret_value() if settings.smtp_password else "",
                      ca_file=settings.smtp_ca_file)


def dkim_key(settings: Settings) -> DkimKey:
    """The operator's DKIM key (made on first use) for ``TIEZHENG_DKIM_DOMAIN`` or the From address's domain."""
    from evidence.notices.message import load_or_create_dkim_key
    from evidence.notices.model import NoticeError

    domain = settings.dkim_domain or (settings.smtp_from or "").rpartition("@")[2].strip("> ")
    try:
        return load_or_create_dkim_key(settings.root / "keys" / "dkim", domain=domain, selector=settings.dkim_selector)
    except NoticeError as exc:
        raise ApiError(409, "dkim_not_configured", f"{exc}: set TIEZHENG_SMTP_FROM or TIEZHENG_DKIM_DOMAIN") from None


def _nameserver(settings: Settings) -> Nameserver | None:
    from evidence.notices.dns_lookup import Nameserver

    return Nameserver.parse(settings.dns_resolver) if settings.dns_resolver else None


def _matter_tenant(session: Session, caller: Caller) -> int:
    """The tenant whose matters a caller files under: its own, or the embedded CLI's ``local`` tenant."""
    return caller.tenant_id if caller.tenant_id is not None else matters.local_tenant_id(session)


def _accept(desk: NoticeDesk, session: Session, caller: Caller, built: BuiltPackage, kind: EvidenceKind,
            title: str, *, matter: str | None = None, detail: dict[str, Any] | None = None) -> None:
    """Queue the package for sealing as the caller's evidence, filed under ``matter`` when the notice has one."""
    filing = None
    if caller.tenant_id is not None:
        assert desk.blobs is not None, "a tenant's notice needs the service's blob store"
        filing = pipeline.Filing(tenant_id=caller.tenant_id, api_key_id=caller.api_key_id, kind=kind, title=title,
                                 note="", package_sha256=desk.blobs.put_file(built.path))
    pipeline.accept(session, built, filing)
    if matter:
        matters.file_evidence(session, tenant_id=_matter_tenant(session, caller), matter_id=matter,
                              evidence_ref=built.evidence_id, detail=detail)


def send(desk: NoticeDesk, caller: Caller, notice_id: str, *, to: str | None = None, allow_incomplete: bool = False,
         client: str = "cli") -> NoticeVersionPublic:
    """Send the notice's draft to ``to`` (or the recipient it names), then seal what went out.

    Raises ApiError: 422 ``incomplete_notice`` (nothing sent; details per rule set), 502 ``smtp_failed``.
    """
    from evidence.notices.deadline import Window, deadline
    from evidence.notices.gate import IncompleteNotice
    from evidence.notices.model import Notice
    from evidence.notices.send import send_notice
    from evidence.notices.smtp_send import SendError

    settings = desk.settings
    with Session(desk.engine) as session:
        row = _versions(session, caller, notice_id)[-1]
        if row.status != "draft":
            raise ApiError(409, "nothing_to_send", f"notice {notice_id} has no unsent draft; draft a correction")
        smtp, key = smtp_config(settings), dkim_key(settings)
        notice = Notice.from_json(json.loads(row.record))
        recipient = to or notice.recipient
        if not recipient:
            raise ApiError(422, "no_recipient", "give the platform's notice address (--to)")
        notice = dataclasses.replace(notice, recipient=recipient)
        try:
            sent = send_notice(notice, to=recipient, sender=settings.smtp_from or "", smtp=smtp, dkim_key=key,
                               packages_dir=settings.packages_dir, operator=desk.operator,
                               requester=caller.requester, allow_incomplete=allow_incomplete,
                               nameserver=_nameserver(settings))
        except IncompleteNotice as exc:
            raise ApiError(422, "incomplete_notice", str(exc), details=[r.to_json() for r in exc.results]) from None
        except SendError as exc:
            raise ApiError(502, "smtp_failed", str(exc)) from None
        _accept(desk, session, caller, sent.built, EvidenceKind.NOTICE,
                f"{notice.action} {notice_id} v{notice.version} to {recipient}", matter=row.matter,
                detail={"notice": notice_id, "version": notice.version, "action": notice.action})
        sent_at = datetime.now(UTC)
        row.status, row.recipient, row.record = "sent", recipient, json.dumps(notice.to_json(), ensure_ascii=False)
        row.evidence_id, row.fingerprint = sent.built.evidence_id, sent.built.fingerprint.hex()
        row.queue_id, row.sent_at = sent.delivery.queue_id, sent_at
        row.due = deadline(sent_at, Window.parse(row.window)).due.isoformat() if notice.action != "withdrawal" else None
        session.add(row)
        crud.record_audit(session, action="notice.send", tenant_id=caller.tenant_id, api_key_id=caller.api_key_id,
                          target=row.id, outcome=202, client=client,
                          detail={"evidence_id": row.evidence_id, "to": recipient, "queue_id": row.queue_id})
        session.commit()
        return _version_public(row)


def withdraw(desk: NoticeDesk, caller: Caller, notice_id: str, *, reason: str,
             client: str = "cli") -> NoticeVersionPublic:
    """Withdraw a sent notice: a new version (action ``withdrawal``) linked to the last sent one, sent
    to the same address and sealed. The earlier versions stay as they were."""
    from evidence.notices.model import Notice

    with Session(desk.engine) as session:
        rows = _versions(session, caller, notice_id)
        previous = _last_sent(rows)
        if previous.action == "withdrawal":
            raise ApiError(409, "already_withdrawn", f"notice {notice_id} is withdrawn already")
        earlier = Notice.from_json(json.loads(previous.record))
        notice = dataclasses.replace(earlier, version=rows[-1].version + 1, action="withdrawal",
                                     previous=previous.fingerprint or "", grounds=reason,
                                     created_at=datetime.now(UTC))
        _store(session, caller, notice, window=previous.window)
        recipient = previous.recipient
        session.commit()
    return send(desk, caller, notice_id, to=recipient, client=client)


# -- replies ---------------------------------------------------------------------------------------

def reply(desk: NoticeDesk, caller: Caller, notice_id: str, eml: bytes, *, client: str = "cli") -> NoticeReplyPublic:
    """Import a reply or delivery-status notification: DKIM checked, sealed with its key record."""
    from evidence.notices.model import NoticeError
    from evidence.notices.reply import import_reply

    nameserver = _nameserver(desk.settings)
    with Session(desk.engine) as session:
        answered = _last_sent(_versions(session, caller, notice_id))
        try:
            built, checked = import_reply(eml, notice_id=notice_id, notice_fingerprint=answered.fingerprint or "",
                                          nameserver=nameserver, packages_dir=desk.settings.packages_dir,
                                          operator=desk.operator, requester=caller.requester)
        except NoticeError as exc:
            raise ApiError(422, "invalid_reply", str(exc)) from None
        _accept(desk, session, caller, built, EvidenceKind.NOTICE_REPLY, f"reply to {notice_id}",
                matter=answered.matter, detail={"reply_to": notice_id, "dkim": checked.result["status"]})
        row = NoticeReply(evidence_id=built.evidence_id, notice_id=notice_id, tenant_id=caller.tenant_id,
                          fingerprint=built.fingerprint.hex(), dkim_status=checked.result["status"],
                          dkim_domain=checked.result.get("domain"), message_sha256=hashlib.sha256(eml).hexdigest())
        session.add(row)
        crud.record_audit(session, action="notice.reply", tenant_id=caller.tenant_id, api_key_id=caller.api_key_id,
                          target=built.evidence_id, outcome=202, client=client,
                          detail={"notice_id": notice_id, "dkim": checked.result["status"]})
        session.commit()
        return NoticeReplyPublic.model_validate(row, from_attributes=True)


# -- closed windows --------------------------------------------------------------------------------

@dataclass(frozen=True)
class ClosedWindow:
    """A sent notice whose response window has ended: the URLs its matter's watch should capture again."""

    notice_id: str
    version: int
    tenant_id: int | None
    matter: str | None
    due: str
    urls: tuple[str, ...]


def closed_windows(session: Session, *, today: date) -> list[tuple[str, ClosedWindow | None]]:
    """Every sent version (all tenants) whose window ended before ``today`` (China Standard Time) and
    that was not handed over yet, by its row id; the window is None for a version corrected or
    withdrawn since (a correction runs its own window, a withdrawal ends it): it is only to be marked.
    Nothing is written here: ``notice_recheck`` hands each over and marks it in one transaction."""
    found: list[tuple[str, ClosedWindow | None]] = []
    rows = session.exec(select(NoticeVersion).where(col(NoticeVersion.status) == "sent",
                                                    col(NoticeVersion.due).is_not(None),
                                                    col(NoticeVersion.due) < today.isoformat(),
                                                    col(NoticeVersion.recheck_at).is_(None))
                        .order_by(col(NoticeVersion.due), col(NoticeVersion.id))).all()
    for row in rows:
        later = session.exec(select(NoticeVersion.id).where(NoticeVersion.notice_id == row.notice_id,
                                                            NoticeVersion.version > row.version,
                                                            NoticeVersion.status == "sent")).first()
        if later is not None or row.action == "withdrawal" or row.due is None:
            found.append((row.id, None))
            continue
        record = json.loads(row.record)
        urls = tuple(str(item.get("url")) for item in record.get("infringing", []) if item.get("url"))
        found.append((row.id, ClosedWindow(row.notice_id, row.version, row.tenant_id, row.matter, row.due, urls)))
    return found


# -- the reply mailbox -----------------------------------------------------------------------------

@dataclass(frozen=True)
class PollOutcome:
    imported: list[NoticeReplyPublic]
    #: Messages already imported (by their SHA-256): marked read, not sealed twice.
    duplicates: int
    #: Messages naming no notice of this host, or several: left unread for a person to file.
    unmatched: int


def imap_config(settings: Settings) -> ImapConfig:
    from evidence.notices.imap_poll import ImapConfig

    if not settings.imap_host:
        raise ApiError(409, "imap_not_configured", "polling replies needs TIEZHENG_IMAP_HOST")
    return ImapConfig(host=settings.imap_host, port=settings.imap_port, security=settings.imap_security,
                      username=settings.imap_user or "",
                      password=settings.imap_password.get_secret_value() if settings.imap_password else "",
                      mailbox=settings.imap_mailbox, ca_file=settings.imap_ca_file)


def _owner_of(session: Session, notice_id: str) -> Caller | None:
    row = session.exec(select(NoticeVersion).where(NoticeVersion.notice_id == notice_id)).first()
    if row is None:
        return None
    if row.tenant_id is None:
        return Caller.local()
    from api.service.jobs import requester_named

    tenant = crud.tenant_of(session, tenant_id=row.tenant_id)
    return Caller(tenant_id=row.tenant_id, requester=requester_named(tenant.name if tenant else "unknown", None))


def poll_replies(desk: NoticeDesk) -> PollOutcome:
    """Import every unseen message of the reply mailbox that names exactly one notice of this host,
    each for the tenant that sent that notice; mark it read once sealed."""
    from evidence.notices.imap_poll import MailboxReader, notice_ids
    from evidence.notices.model import NoticeError

    imported: list[NoticeReplyPublic] = []
    duplicates = unmatched = 0
    try:
        with MailboxReader(imap_config(desk.settings)) as mailbox:
            for uid, message in mailbox.unseen():
                with Session(desk.engine) as session:
                    known = session.exec(select(NoticeReply).where(
                        NoticeReply.message_sha256 == hashlib.sha256(message).hexdigest())).first()
                    owners = {nid: _owner_of(session, nid) for nid in notice_ids(message)}
                if known is not None:
                    duplicates += 1
                    mailbox.mark_seen(uid)
                    continue
                matched = [(nid, caller) for nid, caller in owners.items() if caller is not None]
                if len(matched) != 1:
                    unmatched += 1
                    continue
                notice_id, caller = matched[0]
                imported.append(reply(desk, caller, notice_id, message, client="imap"))
                mailbox.mark_seen(uid)
    except NoticeError as exc:
        raise ApiError(502, "imap_failed", str(exc)) from None
    return PollOutcome(imported=imported, duplicates=duplicates, unmatched=unmatched)
