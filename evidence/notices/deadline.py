"""When a platform's time to answer a notice runs out.

Three kinds of window:
- ``calendar``: N calendar days (15 by default, the window the notice rules give platforms);
- ``working``: N working days (20 under the rule that sets it), counted with China's public-holiday
  calendar, adjusted working weekends (调休) included, from the ``chinesecalendar`` package;
- ``until``: a date the user sets.

Counting follows the Civil Code: a period in days starts on the day after the notice was sent
(Art. 201), and when its last day is a rest day (a weekend or public holiday, not an adjusted working
weekend) it ends on the first working day after (Art. 203).
Days are dates in China Standard Time. The holiday calendar covers only the years its package
version knows; past that, Monday to Friday count as working days and the deadline says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Literal

from evidence.notices.model import NoticeError

CHINA_STANDARD_TIME = timezone(timedelta(hours=8), "CST")
DEFAULT_CALENDAR_DAYS = 15
DEFAULT_WORKING_DAYS = 20
#: A window longer than this is a typing error, not a deadline.
MAX_WINDOW_DAYS = 366
WindowKind = Literal["calendar", "working", "until"]


@dataclass(frozen=True)
class Window:
    kind: WindowKind = "calendar"
    days: int = DEFAULT_CALENDAR_DAYS
    until: date | None = None

    def __post_init__(self) -> None:
        if self.kind == "until":
            if self.until is None:
                raise NoticeError("a user-set window needs its end date")
        elif not 1 <= self.days <= MAX_WINDOW_DAYS:
            raise NoticeError(f"a window of {self.days} days is not between 1 and {MAX_WINDOW_DAYS}")

    @classmethod
    def parse(cls, text: str) -> Window:
        """``15d`` (calendar days), ``20wd`` (working days) or ``2027-01-15`` (until that date)."""
        value = text.strip().lower()
        try:
            if value.endswith("wd"):
                return cls("working", int(value[:-2]))
            if value.endswith("d"):
                return cls("calendar", int(value[:-1]))
            return cls("until", until=date.fromisoformat(value))
        except ValueError as exc:
            raise NoticeError(f"window {text!r} is not 15d, 20wd or a date like 2027-01-15") from exc


@dataclass(frozen=True)
class Deadline:
    due: date
    window: Window
    #: Each day counted on the Monday-to-Friday assumption because the holiday calendar lacks its year.
    assumed: tuple[date, ...] = field(default=())

    def to_json(self) -> dict[str, object]:
        note = (f"{len(self.assumed)} day(s) from {self.assumed[0].year} on counted Monday to Friday: the holiday "
                "calendar does not cover that year yet") if self.assumed else None
        return {"due": self.due.isoformat(), "kind": self.window.kind, "days": self.window.days,
                "until": self.window.until.isoformat() if self.window.until else None, "calendar_note": note}


def _workday(day: date, assumed: list[date]) -> bool:
    import chinese_calendar

    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:
        assumed.append(day)
        return day.weekday() < 5


def deadline(sent_at: datetime, window: Window | None = None) -> Deadline:
    """The last day (China Standard Time) the platform has to answer a notice sent at ``sent_at``."""
    window = window or Window()
    start = sent_at.astimezone(CHINA_STANDARD_TIME).date()
    assumed: list[date] = []
    if window.kind == "until":
        assert window.until is not None
        if window.until <= start:
            raise NoticeError(f"the window ends on {window.until}, not after the notice was sent ({start})")
        return Deadline(window.until, window)
    day = start
    if window.kind == "working":
        counted = 0
        while counted < window.days:
            day += timedelta(days=1)
            counted += _workday(day, assumed)
        return Deadline(day, window, tuple(assumed))
    day = start + timedelta(days=window.days)
    # Rest days count as 法定休假日 here, weekends included, as courts read Art. 203 for periods in days.
    while not _workday(day, assumed):
        day += timedelta(days=1)
    return Deadline(day, window, tuple(assumed))

