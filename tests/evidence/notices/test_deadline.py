from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import chinese_calendar
import pytest

from evidence.notices.deadline import Window, deadline
from evidence.notices.model import NoticeError


def test_fifteen_calendar_days_by_default_counted_from_the_next_day() -> None:
    # Sent Monday 2026-03-02 10:00 Beijing time: day 1 is 03-03, day 15 is Tuesday 03-17.
    assert deadline(datetime(2026, 3, 2, 2, 0, tzinfo=UTC)).due == date(2026, 3, 17)


def test_days_are_china_standard_time_dates() -> None:
    # 2026-03-02 17:00 UTC is already 03-03 01:00 in Beijing.
    assert deadline(datetime(2026, 3, 2, 17, 0, tzinfo=UTC)).due == date(2026, 3, 18)


def test_a_calendar_window_ending_in_the_national_day_holiday_moves_past_it() -> None:
    # Sent 2026-09-16: day 15 is 10-01, in the National Day holiday (10-01..10-07); 10-08 is a working day.
    due = deadline(datetime(2026, 9, 16, 2, tzinfo=UTC)).due
    assert due == date(2026, 10, 8)


def test_twenty_working_days_skip_the_spring_festival_and_count_adjusted_working_weekends() -> None:
    # Sent Monday 2026-02-09. Spring Festival 2026: 02-15..02-23 off; Saturday 02-14 and 02-28 are worked.
    due = deadline(datetime(2026, 2, 9, 2, tzinfo=UTC), Window("working", 20)).due
    days = (date(2026, 2, 10) + timedelta(days=i) for i in range(60))
    counted = [d for d in days if chinese_calendar.is_workday(d) and d <= due]
    assert len(counted) == 20 and chinese_calendar.is_workday(due)
    assert due > date(2026, 3, 9)  # 20 plain weekdays would end on 03-09; the holiday pushes it out


def test_working_days_past_the_calendar_data_are_weekdays_and_say_so() -> None:
    result = deadline(datetime(2026, 12, 21, 2, tzinfo=UTC), Window("working", 20))
    assert result.assumed and result.to_json()["calendar_note"]
    assert result.due.year == 2027


def test_user_set_windows() -> None:
    assert deadline(datetime(2026, 3, 2, tzinfo=UTC), Window.parse("2026-04-01")).due == date(2026, 4, 1)
    assert Window.parse("20wd") == Window("working", 20) and Window.parse("7d") == Window("calendar", 7)
    with pytest.raises(NoticeError):
        deadline(datetime(2026, 3, 2, tzinfo=UTC), Window.parse("2026-03-01"))
    with pytest.raises(NoticeError):
        Window.parse("soon")
