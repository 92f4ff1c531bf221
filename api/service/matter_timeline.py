"""Timelines: a matter's evidence, or one subject's across matters, verified (TL1, TL2) with its document.

The packages filed under the matter are put in a temporary folder exactly as a download gives them
(the sealed package, or the package as accepted while it waits for sealing), then checked with
``verifier.timeline.verify_timeline``: what the service shows is what `tiezheng-verify timeline`
says of the same files. A watch's runs form its chains; evidence captured or uploaded on its own
stands alone in the document. A subject's timeline (a seller, an account, a shop) takes the
tenant's evidence about that subject from every matter, so a seller who reappears under a new store
shows up beside the old one.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlmodel import Session, col, select

from api.service import crud, matters
from api.service.blobs import BlobBackend
from api.service.models import Evidence
from api.service.packages import current
from api.service.settings import Settings
from verifier.errors import InvalidPackage
from verifier.package import open_package
from verifier.report.timeline import TimelineDocument, render_timeline_html, render_timeline_pdf
from verifier.report.timeline_entries import timeline_document
from verifier.timeline import TimelineReport, verify_timeline
from verifier.trust import Trust


@dataclass(frozen=True)
class MatterTimeline:
    report: TimelineReport
    document: TimelineDocument
    #: Filed evidence that has no package yet (a capture still running, or one that failed).
    without_package: tuple[str, ...]

    def html(self) -> str:
        return render_timeline_html(self.document)

    def pdf(self) -> bytes:
        return render_timeline_pdf(self.document)


def matter_timeline(session: Session, blobs: BlobBackend, settings: Settings, *, tenant_id: int, matter_id: str,
                    trust: Trust) -> MatterTimeline:
    """The tenant's matter as a verified timeline. Raises ApiError 404 for a matter it does not have."""
    matter = matters.get(session, tenant_id=tenant_id, matter_id=matter_id)
    refs = matters.filed_under(session, tenant_id=tenant_id, matter_id=matter_id)
    with _packages_of(session, blobs, settings, tenant_id=tenant_id, refs=refs) as (folder, missing):
        report = verify_timeline(folder, trust, thumbnails=True)
    title = f"{matter.title} ({matter.reference})" if matter.reference else matter.title
    return MatterTimeline(report, timeline_document(report, title=title), tuple(missing))


def subject_timeline(session: Session, blobs: BlobBackend, settings: Settings, *, tenant_id: int, subject: str,
                     trust: Trust) -> MatterTimeline:
    """Every item of the tenant whose manifest names ``subject``, across matters, as one verified timeline."""
    refs = list(session.exec(select(Evidence.id).where(Evidence.tenant_id == tenant_id, Evidence.subject == subject)
                             .order_by(col(Evidence.created_at))).all())
    with _packages_of(session, blobs, settings, tenant_id=tenant_id, refs=refs) as (folder, missing):
        _add_local_packages_about(settings, subject, folder)
        report = verify_timeline(folder, trust, thumbnails=True)
    return MatterTimeline(report, timeline_document(report, title=f"Subject: {subject}"), tuple(missing))


def _add_local_packages_about(settings: Settings, subject: str, folder: Path) -> None:
    """The embedded CLI's own captures (no evidence row) whose signed manifest names ``subject``."""
    if not settings.packages_dir.is_dir():
        return
    for path in sorted(settings.packages_dir.glob("*.wacz")):
        if (folder / path.name).exists():
            continue
        try:
            named = open_package(path).manifest.data.get("subject")
        except InvalidPackage:
            continue  # not ours to judge here: only packages that say they are about the subject are added
        if named == subject:
            (folder / path.name).write_bytes(path.read_bytes())


@contextmanager
def _packages_of(session: Session, blobs: BlobBackend, settings: Settings, *, tenant_id: int,
                 refs: list[str]) -> Iterator[tuple[Path, list[str]]]:
    settings.tmp_dir.mkdir(parents=True, exist_ok=True)
    missing: list[str] = []
    with tempfile.TemporaryDirectory(dir=settings.tmp_dir, prefix="timeline-") as folder:
        for ref in refs:
            found = crud.get_evidence(session, tenant_id=tenant_id, row_id=ref)
            package = None if found is None else current(session, blobs, *found)
            local = settings.packages_dir / f"{ref}.wacz"
            if package is not None and found is not None:
                name = f"{found[0].evidence_id or found[0].id}.wacz"
                with (Path(folder) / name).open("wb") as out:
                    for chunk in package.chunks():
                        out.write(chunk)
            elif local.is_file():  # the embedded CLI's own capture or upload: its (sealed) file is the package
                (Path(folder) / local.name).write_bytes(local.read_bytes())
            else:
                missing.append(ref)
        yield Path(folder), missing
