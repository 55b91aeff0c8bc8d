"""Ages in words at every boundary, and the display date."""

from __future__ import annotations

import datetime as dt

import pytest

from qabot.dates import age, display_date, months_between

D = dt.date


@pytest.mark.parametrize(
    ("date", "as_of", "words"),
    [
        (D(2022, 8, 10), D(2022, 8, 10), "today"),
        (D(2022, 8, 11), D(2022, 8, 10), "today"),  # a future date never says "in the future"
        (D(2023, 1, 1), D(2022, 8, 10), "today"),
        (D(2022, 8, 9), D(2022, 8, 10), "yesterday"),
        (D(2021, 12, 31), D(2022, 1, 1), "yesterday"),  # across a year
        (D(2022, 8, 8), D(2022, 8, 10), "2 days ago"),
        (D(2022, 8, 4), D(2022, 8, 10), "6 days ago"),
        (D(2022, 8, 3), D(2022, 8, 10), "1 week ago"),
        (D(2022, 7, 28), D(2022, 8, 10), "1 week ago"),  # 13 days
        (D(2022, 7, 27), D(2022, 8, 10), "2 weeks ago"),  # 14 days
        (D(2022, 7, 11), D(2022, 8, 10), "4 weeks ago"),  # 30 days, not yet a calendar month
        (D(2022, 7, 10), D(2022, 8, 10), "1 month ago"),
        (D(2022, 1, 31), D(2022, 2, 27), "3 weeks ago"),
        (D(2022, 1, 31), D(2022, 2, 28), "1 month ago"),  # the 31st: a month on the last day
        (D(2022, 2, 28), D(2022, 3, 27), "3 weeks ago"),
        (D(2022, 2, 28), D(2022, 3, 28), "1 month ago"),
        (D(2022, 3, 11), D(2022, 8, 10), "4 months ago"),
        (D(2022, 3, 10), D(2022, 8, 10), "5 months ago"),
        (D(2021, 8, 11), D(2022, 8, 10), "11 months ago"),
        (D(2021, 8, 10), D(2022, 8, 10), "1 year ago"),
        (D(2020, 8, 11), D(2022, 8, 10), "1 year ago"),
        (D(2020, 8, 10), D(2022, 8, 10), "2 years ago"),
        (D(2018, 7, 27), D(2022, 8, 10), "4 years ago"),
        (D(2020, 2, 29), D(2021, 2, 28), "1 year ago"),  # leap day
        (D(2020, 2, 29), D(2021, 2, 27), "11 months ago"),
    ],
)
def test_age(date: dt.date, as_of: dt.date, words: str) -> None:
    assert age(date, as_of) == words


def test_months_between_is_never_negative() -> None:
    assert months_between(D(2022, 8, 10), D(2022, 8, 1)) == 0
    assert months_between(D(2022, 8, 10), D(2022, 9, 9)) == 0
    assert months_between(D(2022, 8, 10), D(2022, 9, 10)) == 1


@pytest.mark.parametrize(
    ("date", "text"),
    [(D(2022, 7, 27), "27 Jul 2022"), (D(2022, 1, 1), "1 Jan 2022"), (D(1999, 12, 31), "31 Dec 1999"),
     (D(2022, 9, 5), "5 Sep 2022")],
)
def test_display_date(date: dt.date, text: str) -> None:
    assert display_date(date) == text


def test_age_at_the_last_day_of_the_calendar() -> None:
    """9999-12-31 has no next day to compare months with: no OverflowError."""
    assert age(dt.date(9999, 11, 30), dt.date.max) == "1 month ago"
    assert months_between(dt.date(9999, 1, 31), dt.date.max) == 11
