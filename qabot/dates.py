"""How old an article is, in words ("3 days ago"), and its date as people read it ("27 Jul 2022")."""

from __future__ import annotations

import calendar
import datetime as dt

# Fixed English names: strftime("%b") follows the process locale.
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def age(date: dt.date, as_of: dt.date) -> str:
    """"today", "yesterday", "3 days ago", "2 weeks ago", "5 months ago", "4 years ago".

    Days up to a week, then weeks until a whole calendar month has passed (27 Jul → 27 Aug is
    "1 month ago", 26 Aug "4 weeks ago"), then months until a whole year has. A date after
    `as_of` says "today": callers filter future articles out, and an off-by-a-timezone day
    must never read as "in the future".
    """
    days = (as_of - date).days
    if days <= 0:
        return "today"
    if days == 1:
        return "yesterday"
    if days < 7:
        return f"{days} days ago"
    months = months_between(date, as_of)
    if months == 0:
        return _plural(days // 7, "week")
    if months < 12:
        return _plural(months, "month")
    return _plural(months // 12, "year")


def months_between(start: dt.date, end: dt.date) -> int:
    """Whole calendar months from `start` to `end` (0 when end is before start's day next month).

    A month counts when `end` reaches `start`'s day of the month; a start on the 31st counts a
    month on the last day of a shorter month (31 Jan → 28 Feb is one month).
    """
    months = (end.year - start.year) * 12 + end.month - start.month
    if end.day < start.day and not _last_day(end):
        months -= 1
    return max(months, 0)


def display_date(date: dt.date) -> str:
    """"27 Jul 2022": day, English month abbreviation, year."""
    return f"{date.day} {_MONTHS[date.month - 1]} {date.year}"


def _last_day(date: dt.date) -> bool:
    return date.day == calendar.monthrange(date.year, date.month)[1]  # no +1 day: 9999-12-31


def _plural(n: int, unit: str) -> str:
    return f"{n} {unit}{'' if n == 1 else 's'} ago"
