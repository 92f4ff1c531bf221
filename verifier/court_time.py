"""Times, durations and counts as a court reads them, in Chinese and English.

Every time is shown twice in one fixed format, Beijing time first (the court's clock) and UTC second
(the clock of the timestamp and the chain), to the millisecond, so two times in a report compare at
a glance. Durations are words with units ("0.7 秒" / "0.7 s"), counts are cardinal ("1 hash",
"2 hashes") and positions count from 1 ("leaf 1 of 2"), as a reader counts.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

#: China Standard Time: UTC+8 all year, no daylight saving since 1991.
BEIJING = timezone(timedelta(hours=8), "UTC+8")
BEIJING_LABEL = "北京时间 UTC+8"


def _clock(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


def format_time(moment: datetime | str) -> str:
    """``2026-12-01 23:14:42.123 (北京时间 UTC+8) / 2026-12-01 15:14:42.123 UTC``.

    Takes a datetime or an ISO 8601 string (as facts carry them). A naive datetime is read as UTC;
    a string that is not a time comes back unchanged, so a malformed package value stays visible.
    """
    if isinstance(moment, str):
        try:
            moment = datetime.fromisoformat(moment.replace("Z", "+00:00"))
        except ValueError:
            return str(moment)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return f"{_clock(moment.astimezone(BEIJING))} ({BEIJING_LABEL}) / {_clock(moment.astimezone(UTC))} UTC"


def _number(value: float) -> str:
    """At most 3 decimals, no trailing zeros: 0.7, 12, 1.234."""
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


#: (seconds per unit, Chinese unit, English unit singular, English plural).
_UNITS = ((86400, "天", "day", "days"), (3600, "小时", "hour", "hours"), (60, "分钟", "minute", "minutes"))


def format_duration(seconds: float | timedelta, lang: str = "en") -> str:
    """A duration in words: ``0.7 s`` / ``0.7 秒`` under a minute, else the largest whole unit(s).

    ``90 s`` reads ``1 minute 30 s`` / ``1 分钟 30 秒``; ``24 h`` reads ``24 hours`` / ``24 小时``.
    A negative duration is stated as such ("-2 s"), never hidden.
    """
    total = seconds.total_seconds() if isinstance(seconds, timedelta) else float(seconds)
    if abs(total) < 60:
        return f"{_number(total)} 秒" if lang == "zh" else f"{_number(total)} s"
    sign, rest = ("-" if total < 0 else ""), abs(total)
    parts: list[str] = []
    for size, zh, one, many in _UNITS:
        whole = int(rest // size)
        if whole:
            parts.append(f"{whole} {zh}" if lang == "zh" else plural(whole, one, many))
            rest -= whole * size
        if len(parts) == 2:
            break
    if rest >= 0.001 and len(parts) < 2:
        parts.append(f"{_number(rest)} 秒" if lang == "zh" else f"{_number(rest)} s")
    return sign + " ".join(parts)


def format_seconds(seconds: float | timedelta, lang: str = "en") -> str:
    """A policy number as the trust file sets it, in seconds and exact: ``300 s`` / ``300 秒``."""
    total = seconds.total_seconds() if isinstance(seconds, timedelta) else float(seconds)
    return f"{_number(total)} 秒" if lang == "zh" else f"{_number(total)} s"


def plural(count: int, one: str, many: str | None = None) -> str:
    """``1 hash``, ``2 hashes``, ``0 hashes``: the count with the noun it takes."""
    return f"{count} {one if count == 1 else (many or one + 's')}"


def ordinal_of(index: int, total: int, noun: str = "leaf") -> str:
    """A zero-based position as a reader counts it: index 0 of 2 is ``leaf 1 of 2``."""
    return f"{noun} {index + 1} of {total}"
