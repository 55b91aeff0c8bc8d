"""Inside the answering sentence, the words that answer: a date for "when", a number or amount for
"how many/much", a span for "how long" (and, on request, a name for "who" and "where").

Pure, on one sentence: offsets into it, or None. Only the kinds whose phrase held the answer
string often enough on the dev sets are marked (docs/answers.md); for the others ("what",
"why") it is better to mark nothing than a wrong span.
"""

from __future__ import annotations

import re

from .sentences import (
    DURATION,
    DURATION_IN_TEXT,
    MONTHS,
    NUMBER,
    PERSON,
    PLACE,
    TIME,
    TIME_IN_TEXT,
    asked_number,
    first_new,
)

_NUMBER_WORDS = (r"one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|dozens?|twenty|thirty|"
                 r"forty|fifty|hundreds?|thousands?|millions?|billions?")
_SCALE = r"(?:\s?(?:%|percent|per cent)|\s(?:million|billion|trillion|thousand|hundred)\b)?"
# "$12.6 million", "3,700", "41%", "three-quarters of a percentage point", "dozens"
_AMOUNT = re.compile(
    r"(?:\b(?:half|a third|a quarter|three-quarters)(?: of a (?:percentage )?point)?"
    rf"|[$£€¥]\s?\d[\d,]*(?:\.\d+)?{_SCALE}|\b\d[\d,]*(?:\.\d+)?(?!\d|(?:st|nd|rd|th)\b){_SCALE}"
    rf"|\b(?:{_NUMBER_WORDS})(?:[ -](?:{_NUMBER_WORDS}))*{_SCALE})", re.I)
_YEAR = re.compile(r"(?:19|20)\d\d")
# A full date reads better than its parts: "Sept. 8, 2022" over "2022".
_FULL_DATE = re.compile(rf"\b(?:{MONTHS})\.?\s+\d{{1,2}}(?:,\s+\d{{4}})?\b", re.I)
# A name: capitalised words, with the small words names carry ("Bank of England", "Ursula von der
# Leyen"), not led by a sentence's opening word.
_NAME = re.compile(r"[A-Z][\w'’.-]*[\w](?:\s+(?:(?:of|de|del|der|da|van|von|al|bin|the|and|la|le)\s+)*"
                   r"[A-Z][\w'’.-]*[\w])*")
_OPENERS = frozenset(
    "the a an in on at but and or he she it they this that these those his her its their we i "
    "according after before when while as if since despite during for from with by to meanwhile "
    "however also last next mr mrs ms dr".split())
_MONTH_OR_DAY = re.compile(rf"^(?:{MONTHS}|monday|tuesday|wednesday|thursday|friday|saturday|sunday)\.?$",
                           re.I)


def phrase(sentence: str, kind: str, question: str, names: bool = False) -> tuple[int, int] | None:
    """(start, end) in `sentence` of the words that answer a question of this kind, the first
    that the question does not already hold; None when the kind has no phrase to mark.

    Names ("who", "where") are marked only when `names` is asked for: on the dev sets the first
    new name held the answer in 15 of 48 right sentences (datelines, "CNN", a city where a
    country was asked), so the answer layer leaves them unmarked. Dates held it 10 times in 11,
    numbers 20 in 26."""
    found: re.Match[str] | None = None
    if kind == TIME:
        dates = [*_FULL_DATE.finditer(sentence), *TIME_IN_TEXT.finditer(sentence)]
        found = first_new(sorted(dates, key=lambda m: (m.start(), -m.end())), question)
    elif (particular := asked_number(question, kind)) is not None:  # a score, an age, a sum
        found = first_new(particular.finditer(sentence), question)
    elif kind == NUMBER:
        found = first_new((m for m in _AMOUNT.finditer(sentence) if not _YEAR.fullmatch(m.group())), question)
    elif kind == DURATION:
        found = first_new(DURATION_IN_TEXT.finditer(sentence), question)
    elif kind in (PERSON, PLACE) and names:
        return _name(sentence, question.casefold(), people=kind == PERSON)
    return found.span() if found is not None else None


def _name(sentence: str, asked: str, people: bool) -> tuple[int, int] | None:
    """The first name the question lacks (a person's: two words or more when there is one)."""
    spans = []
    for m in _NAME.finditer(sentence):
        start, words = m.start(), m.group().split()
        while words and (words[0].casefold() in _OPENERS or _MONTH_OR_DAY.match(words[0])):
            start = sentence.index(words[1], start + len(words[0])) if len(words) > 1 else m.end()
            words = words[1:]
        if not words or all(w.casefold().strip("'’s.") in asked for w in words):
            continue
        spans.append((start, m.end(), len(words)))
    if people and any(n >= 2 for _, _, n in spans):
        spans = [s for s in spans if s[2] >= 2]
    return (spans[0][0], spans[0][1]) if spans else None
