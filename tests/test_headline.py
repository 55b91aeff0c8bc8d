"""Titles from awkward openings: bylines, datelines, stamps, promos, long sentences, title lines.

Every text here is made up for the test; none comes from the news dev set.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qabot.headline import LIMIT, headline, is_boilerplate_line, shorten, strip_tags

STORY = "The town council voted on Tuesday to rebuild the old harbour bridge."
HEAD = "Harbour bridge to be rebuilt after council vote"
ASK = "Will the harbour bridge finally be rebuilt?"


@pytest.mark.parametrize(
    ("text", "title"),
    [
        # A short first line without a final period is the headline.
        (HEAD + "\n\n" + STORY, HEAD),
        (ASK + "\n" + STORY, ASK),
        # Prose on the first line: its first sentence.
        (STORY + " Work starts in May.\nMore text.", STORY),
        # Bylines, alone on their line, with or without "By".
        ("By Jane Doe, Example News\n" + STORY, STORY),
        ("Jane Doe and Rob Roe\nExample News\n" + STORY, STORY),
        ("Ann Poe, Jim Loe and Kay Moe\n" + STORY, STORY),
        ("Story by Ann Poe | Photos by Jim Loe | May 3, 2021\n" + STORY, STORY),
        ("Ann Poe, apoe@example.com\n" + STORY, STORY),
        ("Special to Example Today\n" + STORY, STORY),
        ("From Example Network and wire reports\n" + STORY, STORY),
        # Stamps, on their own line or in front of the story.
        ("Updated Aug. 21, 2019, 4:52 p.m. ET\n" + STORY, STORY),
        ("Published 7:05 AM EDT Jun 3, 2022\n\n" + STORY, STORY),
        ("Updated 4:52 PM ET, Wed August 21, 2019 " + STORY, STORY),
        # Datelines and source tags in front of the first sentence.
        ("WASHINGTON (CNN) — " + STORY, STORY),
        ("LONDON, June 3 (Reuters) - " + STORY, STORY),
        ("New York (CNN Business) " + STORY, STORY),
        ("(CNN) " + STORY, STORY),
        ("CNN — " + STORY, STORY),
        ("Lisbon, Portugal CNN — " + STORY, STORY),
        ("SPRINGFIELD, Ill. — " + STORY, STORY),
        ("PORTVILLE – " + STORY, STORY),
        ("GREEN HILLS, Ore.\n" + STORY, STORY),
        # Promos and credits are skipped, line or sentence.
        ("Sign up for our Morning Brief newsletter. Get it in your inbox daily.\n" + STORY, STORY),
        ("A version of this story appeared in the Weekly Wrap newsletter. Sign up here.\n(CNN) "
         + STORY, STORY),
        ("— Recommendations are independently chosen by our editors. Purchases may earn us a "
         "commission.\n" + STORY, STORY),
        ("Editor's note: this page is updated through the day.\n" + STORY, STORY),
        ("SPRINGFIELD, ILL. - MAY 03: A crane lifts a beam over the river. (Photo by Ann Poe/Getty "
         "Images)\n" + STORY, STORY),
        ("Ann Poe/AFP/Getty Images A crane lifts a beam over the river.\n" + STORY, STORY),
        ("In this file photo, a crane lifts a beam over the river.\n" + STORY, STORY),
        ("This content is provided for free as a public service to our readers.\n" + STORY, STORY),
        ("Regional Transportation & Safety Administration\n" + STORY, STORY),
        # A one-word opener says little: the next sentence.
        ("Finally.\n" + STORY, STORY),
        # Line endings and leading blank lines.
        ("\r\n\r\nHarbour bridge to be rebuilt\r\n\r\n" + STORY + "\r\n", "Harbour bridge to be rebuilt"),
        ("\n\n   \n" + STORY, STORY),
        # %-escapes of scraped text.
        ("The bridge%2C built in 1890%2C will close\n" + STORY, "The bridge, built in 1890, will close"),
    ],
)
def test_title(text: str, title: str) -> None:
    assert headline(text) == title


def test_not_boilerplate() -> None:
    """Things that look a little like boilerplate but are the story."""
    signup = "Millions of families rushed to sign up for free school meals on Monday."
    assert headline(signup + "\nMore.") == signup
    assert headline("Biden and Putin meet in Geneva\n" + STORY) == "Biden and Putin meet in Geneva"
    assert headline("AC/DC announce a farewell tour\n" + STORY) == "AC/DC announce a farewell tour"
    assert not is_boilerplate_line("Mayor Ann Poe and her deputy resign")


def test_body_start_and_date_line() -> None:
    text = " date 2022-07-27 By Jane Doe, Example News\n" + STORY
    assert headline(text, len(" date 2022-07-27 ")) == STORY


def test_a_long_first_sentence_is_cut_on_a_word_boundary() -> None:
    long = ("The town council voted late on Tuesday evening, after a heated public hearing that ran "
            "for more than six hours, to rebuild the old harbour bridge.")
    title = headline(long)
    assert len(title) <= LIMIT and title.endswith("…")
    assert long.startswith(title[:-1])
    assert long[len(title) - 1] == " "  # cut between words
    assert not title[:-1].endswith((" the", " of", ","))  # no dangling little word


def test_a_long_title_line_is_not_taken_whole() -> None:
    line = "Harbour bridge " + "and its many approaches " * 5 + "to be rebuilt"
    assert len(headline(line + "\n" + STORY)) <= LIMIT


def test_only_boilerplate_falls_back_to_the_first_words() -> None:
    text = "By Jane Doe, Example News\nUpdated May 3, 2021"
    assert headline(text) == "By Jane Doe, Example News Updated May 3, 2021"
    assert headline("Jane Doe and Rob Roe") == "Jane Doe and Rob Roe"


def test_strip_tags_keeps_a_sentence_that_is_only_a_tag() -> None:
    assert strip_tags("WASHINGTON — ") == "WASHINGTON — "
    assert strip_tags("(CNN) Hello there.") == "Hello there."


def test_shorten() -> None:
    assert shorten("short  title\n") == "short title"
    assert shorten("x" * 200) == "x" * (LIMIT - 1) + "…"


@given(st.text(max_size=400))
def test_never_too_long_and_never_empty(text: str) -> None:
    title = headline(text)
    assert len(title) <= LIMIT
    assert bool(title.strip()) == bool(text.strip())
