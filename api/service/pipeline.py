"""The evidence pipeline's one home: a built package is accepted (queued for sealing), sealed and shown.

Every way evidence enters goes through ``accept``: an upload or a capture job of the service (with
the tenant's ``Filing``, in the caller's transaction) and the embedded CLI's (no tenant). The
embedded CLI's whole job, capture, upload, seal and status, is here too, so ``api/cli`` only
parses arguments and prints. The evidence and anchor packages load only when a step needs them: a
`tiezheng status` never loads the browser or the chain libraries.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlmodel import Session

from api.service import crud
from api.service.errors import ApiError, ServiceError
from api.service.models import EvidenceKind
from api.service.runtime import engine_for, operator_for
from api.service.settings import Settings

if TYPE_CHECKING:
    from evidence.capture import CaptureResult
    from evidence.capture_options import CaptureOptions
    from evidence.capture_steps import Step
    from evidence.upload import BuiltPackage
    from verifier.package import Requester


@dataclass(frozen=True)
class Filing:
    """Whose evidence a package is, in the multi-tenant service: the row the tenant sees."""

    tenant_id: int
    api_key_id: int | None
    kind: EvidenceKind
    title: str
    note: str
    #: Where the package's bytes are in the blob store.
    package_sha256: str
    #: The capture request's row, when the package answers one.
    row_id: str | None = None


def accept(session: Session, built: BuiltPackage, filing: Filing | None = None) -> None:
    """Queue ``built`` for sealing in the caller's transaction; with a ``filing``, record the tenant's row too.

    One commit makes "evidence recorded" and "queued for sealing" true together: a crash can never
    leave evidence the sealer does not know about.
    """
    from anchor.store import pending_item

    if filing is not None:
        crud.record_package(session, built, filing)
    # The service's package is the blob (filing.package_sha256), never a file another process must
    # read; only the embedded CLI keeps a package file, which sealing then replaces by its sealed form.
    session.add(pending_item(built.evidence_id, built.fingerprint, "" if filing is not None else built.path))


def accept_local(settings: Settings, built: BuiltPackage, *, matter: str | None = None) -> None:
    """The embedded CLI's acceptance: queued (and filed under ``matter``), durable when this returns."""
    if matter is None:
        with Session(engine_for(settings)) as session:
            accept(session, built)
            session.commit()
        return
    from api.service import matters
    from api.service.db import open_database

    with Session(open_database(settings)) as session:
        accept(session, built)
        matters.file_evidence(session, tenant_id=matters.local_tenant_id(session), matter_id=matter,
                              evidence_ref=built.evidence_id)
        session.commit()


def check_local_matter(settings: Settings, matter_id: str) -> None:
    """Raise ServiceError (404) unless the embedded CLI's tenant has this matter: checked before any work."""
    from api.service import matters
    from api.service.db import open_database

    with Session(open_database(settings)) as session:
        matters.get(session, tenant_id=matters.local_tenant_id(session), matter_id=matter_id)
        session.commit()  # the local tenant, made on first use


# -- the embedded CLI's steps ----------------------------------------------------------------------

def local_requester() -> Requester:
    """The embedded CLI's requester: this machine's user on the local tenant."""
    from evidence.manifest import local_requester as local

    return local()


def requester(tenant: str, identity: str) -> Requester:
    """A manifest's requester by name (the demo's rights owner, say)."""
    from verifier.package import Requester

    return Requester(tenant=tenant, identity=identity)


def upload_local(settings: Settings, files: Sequence[Path], *, note: str, matter: str | None = None) -> BuiltPackage:
    """Package ``files`` as one upload evidence item and queue it (filed under ``matter``).

    Raises ServiceError for unusable files or an unknown matter.
    """
    from evidence.upload import UploadError, build_upload

    if matter is not None:
        check_local_matter(settings, matter)

    try:
        built = build_upload(list(files), packages_dir=settings.packages_dir, operator=operator_for(settings),
                             requester=local_requester(), note=note)
    except UploadError as exc:
        raise ServiceError(str(exc)) from None
    accept_local(settings, built, matter=matter)
    return built


def read_url_file(path: Path) -> list[str]:
    """The URLs of a text file, one a line. Raises ServiceError for a file that is not UTF-8 text."""
    from evidence.capture import read_url_file as read
    from evidence.capture_errors import CaptureError

    try:
        return read(path)
    except CaptureError as exc:
        raise ServiceError(str(exc)) from None


def capture_options(**options: Any) -> CaptureOptions:
    """Checked capture options. Raises ServiceError naming the bad option (``wait must be …``)."""
    from evidence.capture_errors import CaptureError
    from evidence.capture_options import CaptureOptions

    try:
        return CaptureOptions(**options).validated()
    except CaptureError as exc:
        raise ServiceError(str(exc)) from None


def load_steps(spec: str) -> tuple[Step, ...]:
    """The scripted steps of ``preset:NAME`` or a JSON/YAML file. Raises ServiceError with the reason."""
    from evidence.capture_steps import StepError
    from evidence.capture_steps import load_steps as load

    try:
        return load(spec)
    except StepError as exc:
        raise ServiceError(str(exc)) from None


def checked_steps_json(raw: Sequence[object]) -> str:
    """A step list from the API, checked, as the JSON a capture job reads back. Raises ApiError 422."""
    import json

    from evidence.capture_steps import StepError, parse_steps

    try:
        steps = parse_steps(list(raw))
    except StepError as exc:
        raise ApiError(422, "invalid_steps", str(exc)) from None
    return json.dumps([step.record() for step in steps], ensure_ascii=False)


def capture_local(settings: Settings, targets: Sequence[str], options: CaptureOptions, *,
                  on_step: Callable[[str], None] = lambda _: None,
                  on_result: Callable[[CaptureResult], None] = lambda _: None,
                  requester: Requester | None = None) -> list[CaptureResult]:
    """Capture each URL on one warm browser; each package is queued the moment it exists.

    ``on_step`` names what is being waited on ("starting the browser…", "capturing"); ``on_result``
    sees each result once it is queued, so a crash later loses nothing already captured.
    Raises ServiceError when the browser does not start.
    """
    from api.service.runtime import clock_references
    from evidence.browser import WarmBrowser
    from evidence.capture import capture_many
    from evidence.capture_errors import CaptureError

    operator = operator_for(settings)
    if options.matter is not None:
        check_local_matter(settings, options.matter)

    def done(result: CaptureResult) -> None:
        if result.package is not None:
            accept_local(settings, result.package, matter=options.matter)
        on_result(result)

    async def run() -> list[CaptureResult]:
        on_step("starting the browser…")
        try:
            browser = await WarmBrowser.launch()
        except CaptureError as exc:
            raise ServiceError(f"the browser did not start: {exc}") from None
        on_step("capturing")
        try:
            with clock_references(settings) as clock:
                return await capture_many(targets, packages_dir=settings.packages_dir, operator=operator,
                                          requester=requester or local_requester(), options=options,
                                          browser=browser,
                                          on_result=done, clock_references=clock)
        finally:
            await browser.close()

    return asyncio.run(run())


@dataclass(frozen=True)
class SealedItem:
    evidence_id: str
    fingerprint: bytes
    package: Path


@dataclass(frozen=True)
class SealOutcome:
    #: Each sealed batch as ``anchor.store.batch_status`` gives it (root, size, anchors).
    batches: list[dict[str, Any]]
    items: list[SealedItem]
    #: Items still pending or batched after this run (a TSA or chain that did not answer).
    left: int


def seal_pending(settings: Settings, *, on_step: Callable[[str], None]) -> SealOutcome:
    """Seal everything pending now: batch, timestamp, anchor, attach proofs; embedded TSA and devnet."""
    from sqlmodel import col, select

    from anchor.store import ItemState, SealItem, batch_status, items_in
    from api.service.runtime import make_sealer, sealing_services

    on_step("opening the data dir…")
    engine = engine_for(settings)
    unsealed = [ItemState.PENDING, ItemState.BATCHED]
    pending_before = items_in(engine, unsealed)
    on_step("starting the timestamp authority and the devnet…")
    # A devnet started here stops when sealing ends (`tiezheng chain up` keeps one running).
    with sealing_services(settings, keep_devnet=False) as running:
        on_step(f"sealing {pending_before} item(s): Merkle batch, RFC 3161 timestamp, anchor…")
        batches = make_sealer(settings, engine, running).run_once(force=True)
        on_step("finishing: stopping what this command started…")
    with Session(engine) as session:
        rows = session.exec(select(SealItem).where(col(SealItem.batch_id).in_(batches))).all()
    items = [SealedItem(r.evidence_id, bytes.fromhex(r.fingerprint), Path(r.package_path)) for r in rows]
    return SealOutcome(batches=[batch_status(engine, b) or {"id": b} for b in batches], items=items,
                       left=items_in(engine, unsealed))


@dataclass(frozen=True)
class LocalStatus:
    #: Items per state.
    items: dict[str, int]
    unfinished_batches: list[dict[str, Any]] = field(default_factory=list)
    #: Anchors a sealed batch still misses: a chain that was down, retried until it confirms.
    missing_anchors: list[dict[str, Any]] = field(default_factory=list)


def local_status(settings: Settings) -> LocalStatus:
    from sqlmodel import col, select

    from anchor.store import SealAnchor, SealBatch, counts

    engine = engine_for(settings)
    with Session(engine) as session:
        stuck = session.exec(select(SealBatch).where(SealBatch.state != "attached")).all()
        late = session.exec(select(SealAnchor).join(SealBatch, col(SealBatch.id) == col(SealAnchor.batch_id))
                            .where(SealBatch.state == "attached").where(SealAnchor.state != "attached")).all()
    return LocalStatus(
        items=counts(engine),
        unfinished_batches=[{"id": b.id, "state": b.state, "attempts": b.attempts, "last_error": b.last_error}
                            for b in stuck],
        missing_anchors=[{"batch_id": a.batch_id, "chain_id": a.chain_id, "state": a.state,
                          "attempts": a.attempts, "last_error": a.last_error} for a in late])
