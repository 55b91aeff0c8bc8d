"""Time words read as date windows, with fixed as-of days (one across a year boundary)."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from qabot.timewords import RECENT_DAYS, read_time

D = dt.date
WED = D(2022, 8, 10)  # a Wednesday
NEW_YEAR_MON = D(2023, 1, 2)  # a Monday, the first working day of a year
NEW_YEAR_SAT = D(2022, 1, 1)  # a Saturday, New Year's Day


@pytest.mark.parametrize(
    ("question", "as_of", "since", "until", "label"),
    [
        ("What did the Fed say today?", WED, WED, WED, "today"),
        ("Who spoke tonight at the convention?", WED, WED, WED, "today"),
        ("What happened yesterday in Kabul?", WED, D(2022, 8, 9), D(2022, 8, 9), "yesterday"),
        ("What happened yesterday?", NEW_YEAR_MON, D(2023, 1, 1), D(2023, 1, 1), "yesterday"),
        ("Any news this week on rents?", WED, D(2022, 8, 8), WED, "this week"),
        ("Any news this week?", NEW_YEAR_MON, NEW_YEAR_MON, NEW_YEAR_MON, "this week"),
        ("Any news this week?", NEW_YEAR_SAT, D(2021, 12, 27), NEW_YEAR_SAT, "this week"),
        ("What did Congress pass last week?", WED, D(2022, 8, 1), D(2022, 8, 7), "last week"),
        ("What did Congress pass last week?", NEW_YEAR_MON, D(2022, 12, 26), D(2023, 1, 1), "last week"),
        ("Who resigned this month?", WED, D(2022, 8, 1), WED, "this month"),
        ("Who resigned last month?", WED, D(2022, 7, 1), D(2022, 7, 31), "last month"),
        ("Who resigned last month?", NEW_YEAR_MON, D(2022, 12, 1), D(2022, 12, 31), "last month"),
        ("Who resigned last month?", D(2022, 3, 31), D(2022, 2, 1), D(2022, 2, 28), "last month"),
        ("What happened this year?", WED, D(2022, 1, 1), WED, "this year"),
        ("Who won last year?", NEW_YEAR_MON, D(2022, 1, 1), D(2022, 12, 31), "last year"),
        ("Fires in the past 3 days?", WED, D(2022, 8, 8), WED, "past 3 days"),
        ("Storms over the last two weeks", WED, D(2022, 7, 28), WED, "past 2 weeks"),
        ("What happened in the past few days?", NEW_YEAR_MON, D(2022, 12, 31), NEW_YEAR_MON, "past 3 days"),
        # Weekdays: the most recent one on or before as_of.
        ("What did Biden announce on Monday?", WED, D(2022, 8, 8), D(2022, 8, 8), "on Monday"),
        ("What did Biden announce on Wednesday?", WED, WED, WED, "on Wednesday"),
        ("What did Biden announce on Thursday?", WED, D(2022, 8, 4), D(2022, 8, 4), "on Thursday"),
        ("Who won Sunday's race?", WED, D(2022, 8, 7), D(2022, 8, 7), "on Sunday"),
        ("What happened Friday?", NEW_YEAR_MON, D(2022, 12, 30), D(2022, 12, 30), "on Friday"),
        ("What happened last Wednesday?", WED, D(2022, 8, 3), D(2022, 8, 3), "last Wednesday"),
        ("What happened last Monday?", WED, D(2022, 8, 8), D(2022, 8, 8), "last Monday"),
        ("What has happened since Monday?", WED, D(2022, 8, 8), WED, "since Monday"),
    ],
)
def test_windows(question: str, as_of: dt.date, since: dt.date, until: dt.date, label: str) -> None:
    window = read_time(question, as_of)
    assert window is not None
    assert (window.since, window.until, window.label) == (since, until, label)
    assert not window.soft
    assert question[window.span[0] : window.span[1]] == window.words


@pytest.mark.parametrize(
    ("question", "words"),
    [
        ("What is the latest on the Mar-a-Lago search?", "latest"),
        ("Who recently resigned from the cabinet?", "recently"),
        ("Newest monkeypox guidance", "Newest"),
        ("What did the CDC just announce about boosters?", "just announce"),
        ("What has Zelensky said lately?", "lately"),
        ("What did the president just say?", "just say"),
        ("Has the FDA just approved the booster?", "just approved"),
        ("Which senator just resigned?", "just resigned"),
        ("who is the uk prime minister now", "now"),
        ("who runs the broncos now?", "now"),
        ("who is currently leading the race", "currently"),
        ("what are people eating these days", "these days"),
        ("whats going on with the lowmere ferry", "whats going on"),  # chat asks for the news
        ("what's happening in sri lanka", "what's happening"),
        ("any updates on the ferry strike", "any updates"),
    ],
)
def test_recent_words_are_a_soft_window(question: str, words: str) -> None:
    window = read_time(question, WED)
    assert window is not None and window.soft and window.words == words
    assert (window.since, window.until) == (WED - dt.timedelta(days=RECENT_DAYS - 1), WED)


@pytest.mark.parametrize(
    "question",
    [
        "Who won the US Open?",
        "What did USA Today report about gas prices?",
        "When do Black Friday sales start in stores?",
        "What was decided on Super Tuesday?",
        "Just how many people died in the floods?",
        "Is it just a rumour that the CEO resigned?",
        "What is the weekly jobless claims number?",
        "Which monthly report showed inflation falling?",
        "Who hosts the Today show?",
        "How many days did the trial last?",
        "What did Justice Breyer say?",
        "how many have died until now",  # "now" as the end of a span, not a time of asking
        "what is going on",  # nothing it is about: no news asked for
        "what happened with the ferry",  # the past, not the news
        "what happens now that the law passed",
        "now what",
    ],
)
def test_no_time_words(question: str) -> None:
    assert read_time(question, WED) is None


def test_the_first_phrase_wins_and_words_stay_in_the_question() -> None:
    q = "What did Biden say yesterday about last week's jobs report?"
    window = read_time(q, WED)
    assert window is not None and window.label == "yesterday" and window.words == "yesterday"
    assert q[window.span[0] : window.span[1]] == "yesterday"


def test_windows_never_reach_past_as_of() -> None:
    for q in ["today", "this week", "this month", "this year", "latest", "on Sunday", "last Sunday",
              "past 10 days", "since Friday"]:
        for n in range(14):
            as_of = D(2022, 12, 25) + dt.timedelta(days=n)
            w = read_time(q, as_of)
            assert w is not None and w.since <= w.until <= as_of, (q, as_of)


_TIME_QUESTIONS = ["What happened yesterday?", "What happened today?", "News from last week?",
                   "Any news this week?", "What happened in the past 10 days?", "past 3 weeks",
                   "Who resigned last month?", "Who resigned this month?", "What happened last year?",
                   "What happened this year?", "What did he say last Monday?", "on friday",
                   "since Sunday", "latest news", "who just resigned"]


@pytest.mark.parametrize("question", _TIME_QUESTIONS)
@pytest.mark.parametrize("as_of", [D.min, D(1, 1, 5), D(1, 1, 8), D(1, 2, 3), D(2, 1, 1), D.max])
def test_windows_near_the_ends_of_the_calendar(question: str, as_of: dt.date) -> None:
    """As of 0001-01-01 "yesterday" is before the calendar: no window, never OverflowError (nor a
    "year 0" ValueError for "last year"). A window that starts before the calendar is cut there."""
    window = read_time(question, as_of)
    if window is None:  # all of it would be before 0001-01-01
        assert as_of < D(2, 1, 1)
        return
    assert D.min <= window.since <= window.until <= as_of


def test_a_window_cut_at_the_calendar_start_keeps_its_days_on_the_calendar() -> None:
    w = read_time("What happened in the past 10 days?", D(1, 1, 5))
    assert w is not None and (w.since, w.until) == (D.min, D(1, 1, 5))
    assert read_time("What happened last year?", D(1, 6, 1)) is None
    w = read_time("What happened last year?", D(2, 6, 1))
    assert w is not None and (w.since, w.until) == (D(1, 1, 1), D(1, 12, 31))
    w = read_time("Who resigned last month?", D(1, 2, 3))
    assert w is not None and (w.since, w.until) == (D(1, 1, 1), D(1, 1, 31))


@pytest.mark.parametrize(
    ("question", "since", "until", "label"),
    [
        ("who won the world series in 2020", D(2020, 1, 1), D(2020, 12, 31), "2020"),
        ("who won the 2022 us womens open", D(2022, 1, 1), WED, "2022"),  # ends at as_of
        ("what has changed since 2019", D(2019, 1, 1), WED, "since 2019"),
        ("what did the fed do in september 2021", D(2021, 9, 1), D(2021, 9, 30), "September 2021"),
        ("inflation in sept. 2021", D(2021, 9, 1), D(2021, 9, 30), "September 2021"),
        # a month without a year: the most recent one on or before as_of
        ("what did the fed do in september", D(2021, 9, 1), D(2021, 9, 30), "September 2021"),
        ("who had covid in may", D(2022, 5, 1), D(2022, 5, 31), "May 2022"),
        ("what happened in august", D(2022, 8, 1), WED, "August 2022"),
        ("what happened last august", D(2021, 8, 1), D(2021, 8, 31), "August 2021"),
        ("what happened last march", D(2022, 3, 1), D(2022, 3, 31), "March 2022"),
        ("what did the fed do on may 5", D(2022, 5, 5), D(2022, 5, 5), "on 5 May 2022"),
        ("what did the fed do on december 5", D(2021, 12, 5), D(2021, 12, 5), "on 5 December 2021"),
        ("what did the fed do on 5 may 2021", D(2021, 5, 5), D(2021, 5, 5), "on 5 May 2021"),
        ("what happened on february 30", D(2022, 2, 1), D(2022, 2, 28), "February 2022"),
    ],
)
def test_explicit_dates_are_soft_windows(question: str, since: dt.date, until: dt.date, label: str) -> None:
    window = read_time(question, WED)
    assert window is not None and (window.since, window.until, window.label) == (since, until, label)
    assert window.soft and not window.ahead
    assert window.anchored == bool(re.search(r"\b\d{4}\b", question))  # the words name the year


@pytest.mark.parametrize("question", [
    "what this may mean for rates", "may i ask who won", "jan 6 hearings",
    "why were july 4th fireworks canceled", "over 2000 people died", "what is the goal by 2030",
    "the march on washington", "a 2020 percent rise",
])
def test_month_names_and_numbers_that_are_not_dates(question: str) -> None:
    assert read_time(question, WED) is None


def test_a_date_after_as_of_is_ahead() -> None:
    window = read_time("who won the 2031 super bowl", WED)
    assert window is not None and window.ahead and window.since == D(2031, 1, 1)
    assert not read_time("who won in 2022", WED).ahead  # type: ignore[union-attr]
    assert read_time("what happens in september", D(2022, 8, 31)).ahead is False  # type: ignore[union-attr]


@pytest.mark.parametrize(("question", "recent"), [
    ("who is the broncos new president", True), ("who is colombias new president", True),
    ("who is the new prime minister", True), ("who is britain's new chancellor", True),
    ("what is the new law", False), ("news from new york", False), ("who is the new york mayor", False),
    ("who coaches new england", False), ("whats new", False),
])
def test_new_before_an_office_asks_who_holds_it_now(question: str, recent: bool) -> None:
    window = read_time(question, WED)
    assert (window is not None and window.label == "recent" and window.soft) == recent
