"""Time words in a question ("yesterday", "last week", "on Monday", "latest") read as a date window.

Choices, so callers can rely on them:
- Windows are inclusive, `since` ≤ `until` ≤ `as_of`: nothing after the as-of day is asked for.
- Weeks start on Monday (ISO 8601). "this week" runs Monday → as_of; "last week" is the whole
  Monday–Sunday week before it. Months and years are calendar ones, "this …" ending at as_of.
- A weekday alone or after "on" ("on Monday", "Monday's vote") is the most recent such day on or
  before as_of; "last Monday" is the most recent one strictly before; "since Monday" runs from
  that day to as_of.
- "latest", "recent(ly)", "newest", "currently", "these days", "just <did>", a closing "now"
  ("who is the prime minister now"), "new" before an office ("the new president") and chat's
  asking for news ("whats going on with…", "any updates on…") mean a recent window (the last
  RECENT_DAYS days) that is a preference, not a filter: the window says `soft=True`.
- Explicit dates are preferences too (`soft=True`): a year ("in 2021", "the 2022 Open"), a month
  with a year ("in September 2022") or without one, after a word that makes it a date ("in
  September", "last March", "this June", "since April"), and a day after "on" ("on May 5", "on
  May 5, 2022"). Without a year, a month or day is the most recent one on or before as_of ("last
  March": strictly before this month). A month name alone is no date: "May" is a verb, "jan 6" and
  "july 4th" name events. A window that starts after as_of is returned with `ahead=True` (a
  question about a time the articles can't know); otherwise it ends at as_of at the latest.
- The first time phrase in the question wins; its words are returned, and stay in the question.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

RECENT_DAYS = 14
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_NUMBERS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
            "eight": 8, "nine": 9, "ten": 10, "few": 3, "couple of": 2, "a couple of": 2}
_NUMBER = r"(?:\d{1,3}|a couple of|couple of|few|one|two|three|four|five|six|seven|eight|nine|ten)"
# Names that contain a time word but are not one: "USA Today", "Black Friday", "Super Tuesday".
_NOT_TIME = r"(?<!usa )(?<!good )(?<!black )(?<!cyber )(?<!super )(?<!ash )(?<!holy )(?<!maundy )"
_PATTERNS = [
    ("rolling", rf"\b(?:(?:in|over|during) the )?(?:past|last) (?P<n>{_NUMBER}) (?P<unit>days?|weeks?)\b"),
    ("today", rf"{_NOT_TIME}\b(?:today|tonight|this morning|this afternoon|this evening)\b(?!['’]?s? show)"),
    ("yesterday", r"\byesterday\b"),
    ("this_week", r"\b(?:this|current) week\b"),
    ("last_week", r"\b(?:last|past|previous) week\b"),
    ("this_month", r"\b(?:this|current) month\b"),
    ("last_month", r"\b(?:last|past|previous) month\b"),
    ("this_year", r"\b(?:this|current) year\b"),
    ("last_year", r"\b(?:last|past|previous) year\b"),
    ("weekday", rf"{_NOT_TIME}\b(?P<lead>(?:on|last|since|this|past) )?(?P<day>{'|'.join(_WEEKDAYS)})"
                r"(?:['’]s)?\b"),
    ("recent", r"\b(?:latest|newest|most recent(?:ly)?|recent(?:ly)?|lately|currently|right now|"
               r"nowadays|these days|at the moment|(?<!just )(?<!until )(?<!by )now(?=\W*$))\b"),
    # Chat asks for the news without a time word: "whats going on with liz cheney", "what's
    # happening in sri lanka", "any news on the artemis launch", "updates on griner".
    ("recent", r"\b(?:what(?:['’]?s| is| are)\s+(?:happening|going on|new)(?= (?:with|in|at|on|for)\b)"
               r"|any (?:news|updates?)(?= (?:on|about|from|with|in)\b)|updates? on)\b"),
    # "just" as time: before a past verb ("who just resigned"), or in a did/has question ("what
    # did the CDC just announce"); "just how many" is no time word. Only "just <verb>" is returned.
    # "the new president", "colombia's new president", "who is the broncos new coach": whoever
    # holds an office now. Only before an office word: "new york", "a new law" are no time.
    ("recent", r"\bnew(?! (?:york|england|jersey|zealand|mexico|orleans|delhi|hampshire|south wales"
               r"|brunswick|guinea|haven)\b)"
               r"(?= (?:[\w'’-]+ )?(?:president|prime minister|premier|chancellor|ceo|chief"
               r"|leader|owner|owners|coach|manager|chair|chairman|chairwoman|director|head|king|queen"
               r"|pope|governor|mayor|speaker|minister|secretary|commissioner|captain|boss)\b)"),
    ("recent", r"\b(?:(?:did|has|have|had)\s+(?:[\w'’.-]+\s+){0,4}?(?P<jw>just \w+)"
               r"|just (?:\w+ed|said|won|lost|made|sold|told|got|hit|went|came|began|broke|left|took"
               r"|gave|struck|shot|died|met|signed|held|set|ran|fell|rose|quit|chose|spoke|wrote)\b)"),
]
_MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september",
           "october", "november", "december")


def _month(name: str) -> str:
    return (rf"(?P<{name}>january|february|march|april|may|june|july|august|september|october"
            r"|november|december|jan|feb|mar|apr|jun|jul|aug|sept?|oct|nov|dec)\.?")


def _day(name: str) -> str:
    return rf"(?P<{name}>[12]\d|3[01]|0?[1-9])(?:st|nd|rd|th)?"


_YEAR = r"(?:1[89]|2\d)\d\d"
_PATTERNS += [
    # "on May 5", "on May 5, 2022", "on 5 May 2022"
    ("day", rf"\bon (?:{_month('dm1')} {_day('dd1')}|{_day('dd2')} {_month('dm2')})"
            rf"(?:,? (?P<dy>{_YEAR}))?\b"),
    # "September 2022", "in Sept. 2022"; "in September", "last March" (a year, or a word that
    # makes the month a date: not "this", as in "what this may mean")
    ("month", rf"\b(?:(?P<ml1>in|during|last|since|early|late|mid|of)[ -])?{_month('mm1')},? "
              rf"(?P<my>{_YEAR})\b"
              rf"|\b(?P<ml2>in|during|last|since|early|late|mid)[ -]{_month('mm2')}(?![\w'’-])"),
    # "in 2021", "the 2022 Open", "since 2019" (not "by 2030": a deadline, not a window)
    ("year", rf"\b(?P<yl>in|during|since|of|from|the|for) (?P<year>{_YEAR})\b"
             r"(?!\s*(?:%|percent|people|points))"),
]
_RE = re.compile("|".join(f"(?P<k{i}>{p})" for i, (_, p) in enumerate(_PATTERNS)), re.IGNORECASE)


@dataclass(frozen=True)
class TimeWindow:
    """Days `since` … `until` (inclusive) a question asks about, and the words that said so."""

    since: dt.date
    until: dt.date
    label: str  # "yesterday", "this week", "on Monday", "recent", …
    words: str  # the matched text, as written in the question
    span: tuple[int, int]  # where those words are in the question
    soft: bool = False  # True: prefer articles in the window, don't exclude the others
    ahead: bool = False  # True: the whole window is after as_of (no article can tell of it)
    anchored: bool = False  # True: the words name the year ("in 2021"): as_of does not move it


def read_time(question: str, as_of: dt.date) -> TimeWindow | None:
    """The window of the first time phrase in `question`, relative to `as_of`; None if none, or
    if the whole window falls before the calendar's first day (as of 0001-01-01, "yesterday")."""
    m = _RE.search(question)
    if m is None:
        return None
    index = int(next(k for k, v in m.groupdict().items() if k.startswith("k") and v is not None)[1:])
    kind = _PATTERNS[index][0]
    since, until, label = _window(kind, m, as_of)
    if until < 1:
        return None
    span = m.span("jw") if m.group("jw") else m.span()
    ahead = since > as_of.toordinal()
    if not ahead:
        until = min(until, as_of.toordinal())  # "in 2022" asked in June 2022: up to as_of
    anchored = kind in ("day", "month", "year") and bool(re.search(r"\d{4}", m.group()))
    return TimeWindow(dt.date.fromordinal(max(1, since)), dt.date.fromordinal(until), label,
                      question[span[0] : span[1]], span, soft=kind in _SOFT, ahead=ahead, anchored=anchored)


_SOFT = ("recent", "day", "month", "year")


def _window(kind: str, m: re.Match[str], as_of: dt.date) -> tuple[int, int, str]:
    """The window as day ordinals (0001-01-01 is 1). Counted in ordinals, not dates, because near
    the calendar's start a window may begin before it: read_time clamps or drops it."""
    today = as_of.toordinal()
    monday = today - as_of.weekday()
    first = as_of.replace(day=1).toordinal()
    if kind == "today":
        return today, today, "today"
    if kind == "yesterday":
        return today - 1, today - 1, "yesterday"
    if kind == "this_week":
        return monday, today, "this week"
    if kind == "last_week":
        return monday - 7, monday - 1, "last week"
    if kind == "this_month":
        return first, today, "this month"
    if kind == "last_month":
        end = first - 1
        return (_month_start(end) if end >= 1 else end), end, "last month"
    if kind == "this_year":
        return as_of.replace(month=1, day=1).toordinal(), today, "this year"
    if kind == "last_year":
        start = as_of.replace(month=1, day=1).toordinal()
        return (dt.date(as_of.year - 1, 1, 1).toordinal() if as_of.year > 1 else 0), start - 1, "last year"
    if kind == "rolling":
        n = _count(m.group("n"))
        unit = m.group("unit").lower().rstrip("s")
        days = n * (7 if unit == "week" else 1)
        return today - (days - 1), today, f"past {n} {unit}{'' if n == 1 else 's'}"
    if kind == "weekday":
        name = m.group("day").lower()
        lead = (m.group("lead") or "").strip().lower()
        back = (as_of.weekday() - _WEEKDAYS.index(name)) % 7
        if lead in ("last", "past") and back == 0:
            back = 7  # "last Monday", said on a Monday: the one a week ago
        day = today - back
        label = name.capitalize()
        if lead == "since":
            return day, today, f"since {label}"
        return day, day, f"{lead or 'on'} {label}"
    if kind in ("day", "month", "year"):
        return _date_window(kind, m, as_of)
    return today - (RECENT_DAYS - 1), today, "recent"


def _date_window(kind: str, m: re.Match[str], as_of: dt.date) -> tuple[int, int, str]:
    """An explicit year, month or day (module docstring) as day ordinals."""
    today = as_of.toordinal()
    if kind == "year":
        year = int(m.group("year"))
        start = dt.date(year, 1, 1).toordinal()
        if m.group("yl").lower() == "since":
            return start, max(start, today), f"since {year}"
        return start, dt.date(year, 12, 31).toordinal(), str(year)
    if kind == "month":
        month = _month_number(m.group("mm1") or m.group("mm2"))
        lead = (m.group("ml1") or m.group("ml2") or "").lower()
        if m.group("my"):
            year = int(m.group("my"))
        else:  # the most recent such month; "last March" in March is a year ago
            past = month < as_of.month or (month == as_of.month and lead != "last")
            year = as_of.year if past else as_of.year - 1
        if year < 1:
            return 0, 0, ""
        first = dt.date(year, month, 1).toordinal()
        name = f"{_MONTHS[month - 1].capitalize()} {year}"
        if lead == "since":
            return first, max(first, today), f"since {name}"
        return first, _month_end(year, month), name
    month = _month_number(m.group("dm1") or m.group("dm2"))
    day = int(m.group("dd1") or m.group("dd2"))
    year = int(m.group("dy")) if m.group("dy") else (
        as_of.year if (month, day) <= (as_of.month, as_of.day) else as_of.year - 1)
    try:
        when = dt.date(year, month, day).toordinal()
    except ValueError:  # "on February 30": the month, then
        return (dt.date(year, month, 1).toordinal() if year >= 1 else 0), \
            (_month_end(year, month) if year >= 1 else 0), f"{_MONTHS[month - 1].capitalize()} {year}"
    return when, when, f"on {dt.date.fromordinal(when):%-d %B %Y}"


def _month_number(name: str) -> int:
    key = name.lower().rstrip(".")[:3]
    return next(i for i, full in enumerate(_MONTHS, 1) if full.startswith(key))


def _month_end(year: int, month: int) -> int:
    return (dt.date(year + 1, 1, 1) if month == 12 else dt.date(year, month + 1, 1)).toordinal() - 1


def _month_start(ordinal: int) -> int:
    return dt.date.fromordinal(ordinal).replace(day=1).toordinal()


def _count(text: str) -> int:
    text = text.lower()
    return int(text) if text.isdigit() else _NUMBERS[text]
