"""Inside the answering sentence, the words that answer: a date for "when", a number or amount for
"how many/much", a span for "how long", a name for "who" and "where".

Pure, on one sentence: offsets into it, or None. Only the kinds whose phrase held the answer
string often enough on the dev sets are marked (docs/answers.md); for the others ("what",
"why") it is better to mark nothing than a wrong span. A name is never the dateline in front,
a news outlet, or the name the question asks about.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from . import places
from .headline import strip_tags
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
# Leyen", "Coeur d'Alene"), not led by a sentence's opening word.
_WORD = r"(?:[dD]['’])?[A-Z][\w'’.-]*\w"
_NAME = re.compile(rf"{_WORD}(?:\s+(?:(?:of|de|del|der|da|van|von|al|bin|the|la|le)\s+)*{_WORD})*")
# Function words and sentence openers that are capitalised only because a sentence starts with them.
_OPENERS = frozenset(
    "the a an in on at but and or he she it they this that these those his her its their we i "
    "according after before when while as if since despite during for from with by to meanwhile "
    "however also last next mr mrs ms dr just now still yet here there today yesterday instead even "
    "so then well yes no what why how where who which four-time two-time three-time former "
    # sentence adverbs, prepositions and participles a sentence may start with ("Separately,
    # Dr. Anthony Fauci…", "Among the incidents…")
    "separately additionally finally similarly ultimately currently recently previously initially "
    "eventually specifically overall earlier later nevertheless nonetheless furthermore moreover "
    "otherwise indeed among amid across under over about against between through without within "
    "around near like unlike beyond toward towards into onto upon via "
    # and participles ("Hearing anguished calls…, Biden told the crowd")
    "hearing following speaking asked responding citing noting adding saying including having being "
    "given facing seeing standing looking".split())
_MONTH_OR_DAY = re.compile(rf"^(?:{MONTHS}|monday|tuesday|wednesday|thursday|friday|saturday|sunday)\.?$",
                           re.I)
# News outlets are the source, never the answer ("CNN —", "told Reuters").
_OUTLETS = frozenset(("cnn", "cnn business", "ap", "afp", "reuters", "bloomberg", "cnbc", "bbc", "xinhua",
                      "kcna", "usa today", "associated press", "nbc", "abc", "cbs", "npr"))
# A title inside a run of capitals starts a person: "New York Mayor Eric Adams" is a place, then a
# person; "NFL International CEO Damani Leech" an organisation, then a person.
_TITLE = re.compile(r"\s*\b(?:Mayor|Gov\.|Governor|President|Prime Minister|Sen\.|Senator|Rep\.|CEO|"
                    r"Chairman|Chairwoman|Secretary|King|Queen|Prince|Princess|Judge|Justice|Coach|Dr\.|"
                    r"Chancellor|Minister)\s+")
_ENDS_IN_TITLE = re.compile(r"\b(?:Mayor|Governor|President|Minister|Senator|CEO|Chairman|Chairwoman|"
                            r"Secretary|Chancellor|King|Queen|Prince|Princess|Judge|Coach)$")
# The last word of a name that is no person: "Super Bowl", "Australian Labor Party".
_NO_PERSON = re.compile(
    r"\b(?:Bowl|Party|Cup|Open|Organi[sz]ation|Ministry|Service|Association|Department|Council|Committee|"
    r"Agency|Club|League|Court|Airlines|Airways|Times|Post|News|Bank|Company|Corporation|Inc\.?|University|"
    r"Institute|Foundation|Administration|Commission|Office|Board|House|Senate|Congress|Cent(?:er|re)|"
    r"Network|Group|Team|Awards?|Games|Championships?|Series|Tournament|Festival|Stadium|Arena)$")
# A name right after one of these is where something happened: "fled to Singapore", "in Bali".
_PLACE_BEFORE = re.compile(
    r"\b(?:in|at|near|from|to|outside|across|into|inside|toward|towards)\s+(?:the\s+)?$", re.I)


def phrase(sentence: str, kind: str, question: str) -> tuple[int, int] | None:
    """(start, end) in `sentence` of the words that answer a question of this kind, the first
    that the question does not already hold; None when the kind has no phrase to mark.

    Where the answering sentence is right on the dev sets (docs/answers.md), the phrase marked
    held the answer for dates 11 times in 12, amounts 28 in 37, names for "who" 16 in 21, places
    39 in 41; a kind with no phrase ("what", "why") marks nothing rather than a guess."""
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
    elif kind in (PERSON, PLACE):
        return _name(sentence, kind, question)
    return found.span() if found is not None else None


@dataclass(frozen=True)
class _Name:
    start: int
    end: int
    words: int
    person: bool  # may be a person's name: not an organisation, event or place-then-title
    after_place_word: bool  # "in …", "to …", "from …"


def _name(sentence: str, kind: str, question: str) -> tuple[int, int] | None:
    """The first name the question lacks, of the sort asked: a country, state or continent when
    one is asked for by its noun; a place after "in/at/to…" for "where"; for "who", a name of two
    words or more that is no organisation when there is one. Never the dateline or source tag in
    front ("BOGOTA, Colombia —", "(CNN)"), an outlet, or a name sharing a word with the question
    (the name asked about, not the answer)."""
    body = strip_tags(sentence)
    offset = len(sentence) - len(body)
    known = places.asked(question) if kind == PLACE else None
    found = _names(body, _asked(question), kind, regions=kind == PLACE and known is None)
    if known is not None:
        found = [n for n in found if known.fullmatch(body[n.start : n.end])]
    if kind == PERSON:
        found = ([n for n in found if n.words >= 2 and n.person] or [n for n in found if n.words >= 2]
                 or found)
    elif known is None:
        # "in Bali", "fled to Singapore", else the first: "Miami, where rents were up 26.2%…" for
        # "which city". Taking none but those (for "where" alone) lost a right place on half A
        # of both sets and no wrong one.
        found = [n for n in found if n.after_place_word] or found
    return (offset + found[0].start, offset + found[0].end) if found else None


def _names(body: str, asked: frozenset[str], kind: str, regions: bool) -> list[_Name]:
    out = []
    for m in _NAME.finditer(body):
        cuts = [m.start() + t.start() for t in _TITLE.finditer(m.group()) if t.start() > 0]
        for start, end in zip([m.start(), *cuts], [*cuts, m.end()], strict=True):
            qualifier = end in cuts  # the words before a title: "New York" of "New York Mayor …"
            if kind == PERSON and (title := _TITLE.match(body, start, end)) and title.end() < end:
                start = title.end()  # "President Joe Biden" → "Joe Biden"
            name = _trimmed(body, start, end)
            if name is None:
                continue
            start, end = name
            words = body[start:end].split()
            if body[start:end].casefold() in _OUTLETS or any(_bare(w) in asked for w in words):
                continue
            if kind == PERSON and _ENDS_IN_TITLE.search(body[start:end]):
                continue  # "Britain's Prime Minister" is nobody's name
            person = not qualifier and not _NO_PERSON.search(body[start:end])
            if regions and (region := places.IN_REGION.match(body, end)):
                end = region.end()  # "Palm Beach, Florida"
            out.append(_Name(start, end, len(words), person, bool(_PLACE_BEFORE.search(body, 0, start))))
    return out


def _trimmed(body: str, start: int, end: int) -> tuple[int, int] | None:
    """The name without its opening function words, months or days, its closing day or month,
    and a possessive."""
    for word in re.finditer(r"\S+", body[start:end]):
        if word.group().casefold() not in _OPENERS and not _MONTH_OR_DAY.match(word.group()):
            start += word.start()
            break
    else:
        return None
    if (s := re.search(r"['’]s?$", body[start:end])) is not None:
        end = start + s.start()
    # …nor its closing day or month: "near Yosemite National Park Friday"
    while (last := re.search(r"\s+(\S+)$", body[start:end])) and _MONTH_OR_DAY.match(last.group(1)):
        end = start + last.start()
    return (start, end) if end > start else None


def _bare(word: str) -> str:
    return re.sub(r"['’]s?$", "", word.casefold()).replace("'", "").replace("’", "")


@functools.lru_cache(maxsize=64)
def _asked(question: str) -> frozenset[str]:
    """The question's words without apostrophes, and without a plural's "s" too ("womens")."""
    words = {w.replace("'", "").replace("’", "") for w in re.findall(r"[\w'’-]+", question.casefold())}
    return frozenset(words | {w[:-1] for w in words if w.endswith("s")})
