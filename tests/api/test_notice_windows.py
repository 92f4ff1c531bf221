"""When a notice's window closes, its URLs are handed once to the matter's watch for a fresh capture."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

from sqlmodel import Session

from api.service.notice_models import NoticeVersion
from api.service.notices import NoticeDesk, take_closed_windows
from api.service.settings import load_settings
from tests.evidence.notices.conftest import complete_notice


def _sent(notice_id: str, version: int, due: str, action: str = "notice") -> NoticeVersion:
    record = complete_notice(notice_id=notice_id).to_json()
    return NoticeVersion(id=f"{notice_id}.v{version}", notice_id=notice_id, version=version, matter="m-1",
                         action=action, status="sent", record=json.dumps(record), recipient="ip@platform.example",
                         due=due, sent_at=datetime.now(UTC))


def test_closed_windows_are_taken_once_and_superseded_versions_skipped(tmp_path: Path) -> None:
    desk = NoticeDesk.local(load_settings(tmp_path / "data"))
    with Session(desk.engine) as session:
        session.add(_sent("nt-a", 1, "2026-12-10"))
        session.add(_sent("nt-b", 1, "2026-12-31"))  # still open
        session.add(_sent("nt-c", 1, "2026-12-05"))
        session.add(_sent("nt-c", 2, "2026-12-09", action="withdrawal"))
        session.commit()
    taken = take_closed_windows(desk, today=date(2026, 12, 11))
    assert [(w.notice_id, w.version, w.matter, w.urls) for w in taken] == [
        ("nt-a", 1, "m-1", ("https://shop.example/item/1",))]
    assert take_closed_windows(desk, today=date(2026, 12, 11)) == []
    assert [w.notice_id for w in take_closed_windows(desk, today=date(2027, 1, 1))] == ["nt-b"]
