"""Which sentence of a passage answers the question: pure features and one weighted score.

No I/O and no model here: sentences, the question's terms with their BM25 idf, and (optionally)
each sentence's cosine to the question come in; one score per sentence comes out, so each rule
is tested on hand-made text and the weights are chosen by benchmarks/answers.py on the news dev
set (docs/answers.md says how).

What makes a sentence an answer, in news (the weights are a logistic regression fitted on the
dev set's sentences, checked by 2-fold cross-validation over quiz weeks): it shares the
question's rarer words (idf-weighted, not a count), it holds new names and the kind of thing
asked (a date for "when", a number for "how many"), it sits near the top of an article that
ranked well, and it is not a question, a caption or boilerplate. Its cosine to the question
comes from vectors pooled at index time (sentvecs.py), so no sentence is encoded at question
time; encoded one by one it had added nothing once these were in, pooled it helps chat questions.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from . import places
from .bm25 import tokenize
from .furniture import is_furniture
from .headline import strip_tags

# What kind of thing a question asks for; each has its own evidence in a sentence.
PERSON, TIME, NUMBER, PLACE, REASON, THING = "person", "time", "number", "place", "reason", "thing"
DURATION = "duration"  # "how long": a span ("44 days") or its end ("through September")

_PERSON_NOUNS = (
    "person|man|woman|golfer|player|actor|actress|singer|rapper|musician|artist|author|writer|"
    "star|athlete|coach|president|senator|governor|mayor|minister|leader|ceo|executive|judge|"
    "justice|candidate|lawmaker|official|representative|congressman|congresswoman|celebrity|"
    "comedian|host|director|chef|pitcher|quarterback|tennis player|swimmer|driver|boxer|"
    "champion|winner|founder|billionaire|prince|princess|king|queen|pope|member"
)
_PLACE_NOUNS = "country|city|state|nation|town|island|region|county|continent|province|place|capital"
_DURATION_RE = re.compile(r"\bhow long\b", re.I)
_REASON_RE = re.compile(
    r"^\W*(?:why|how come)\b|\bwhy\b|\bwhat (?:caused|causes|led to)\b|\bfor what reason\b", re.I)
_HOW_MUCH = r"\bhow (?:many|much|old|far|tall|big|fast|often)\b"
# The measure a "how …" question asks for (a number or a span): its question word, no word of its
# own ("how old are they"; answer.asks_about).
HOW_MEASURE = re.compile(rf"{_HOW_MUCH}|\bhow long\b", re.I)
_NUMBER_RE = re.compile(rf"{_HOW_MUCH}|"
                        r"\bwhat (?:percentage|percent|number|share|amount|age)\b|"
                        # "what was the record high average price…": an amount, by its noun
                        r"\bwhat(?:s|['’]s| is| was| were| are)? (?:the )?(?:[\w-]+ ){0,3}"
                        r"(?:price|cost|amount|total|salary|fee|toll|rate|score|percentage)\b", re.I)
_TIME_RE = re.compile(r"\bwhen\b|\bwhat (?:year|day|date|month|time)\b|\bwhich (?:year|day|date|month)\b",
                      re.I)
# One word may come between ("which peru town", "which nba player"); two caught a verb's subject
# ("which measure did lawmakers…", "which head of state").
_PLACE_RE = re.compile(rf"\bwhere\b|\b(?:which|what) (?:\w+ )?(?:{_PLACE_NOUNS})\b", re.I)
# ("the who": the World Health Organization typed in lowercase, not the question word)
_PERSON_RE = re.compile(rf"(?<!\bthe )\bwho(?:m|se|s|['’]s)?\b"
                        rf"|\b(?:which|what) (?:\w+ )?(?:{_PERSON_NOUNS})s?\b"
                        r"|\bwhat(?:s|['’]s| is| was) (?:his|her) name\b", re.I)

_WH = re.compile(r"\b(?:who|whom|whose|whos|what|whats|which|where|why|how)\b", re.I)

MONTHS = ("january|february|march|april|may|june|july|august|september|october|november|december|"
           "jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec")
_DAYS = "monday|tuesday|wednesday|thursday|friday|saturday|sunday"
_SPAN = (r"(?:\d+|one|two|three|four|five|six|seven|eight|nine|ten|a few|several) "
         r"(?:hours?|days?|weeks?|months?|years?)")
# A year that names an event ("the 2022 Grammys", "this year's Grammys") dates nothing: "when is
# the grammys" led with "… the 2022 Grammys might also witness history…", not the day of the show.
# After "in", "by" or "on" it is a time whatever follows ("in 2022 Biden signed…").
_YEAR_IN_TEXT = r"\b(?:1[89]|20)\d\d\b(?!['’]?s? (?-i:[A-Z]))|(?<=in |by |on )(?:1[89]|20)\d\d\b"
TIME_IN_TEXT = re.compile(
    rf"\b(?:{MONTHS})\.?\s+\d{{1,2}}\b|\b(?:{_DAYS})\b|{_YEAR_IN_TEXT}|\b(?:today|yesterday|"
    r"tonight|last (?:week|month|year|night)|(?:this|next) (?:week|month|year)(?!['’]s)"
    rf"|{_SPAN} ago|(?:in|within|after|for) {_SPAN})\b",
    re.I)
# How long something lasts: a span, or the day or month it runs until.
DURATION_IN_TEXT = re.compile(
    rf"\b{_SPAN}\b|\b(?:until|through|till|to|by|from) (?:the )?(?:end of )?"
    rf"(?:{MONTHS}|{_DAYS}|(?:19|20)\d\d)\b", re.I)
# What gives a reason: a cause marker ("because", "due to", "after", "amid", "citing", "so that").
_REASON_IN_TEXT = re.compile(
    r"\b(?:because|due to|owing to|as a result|after|amid|citing|cited|over concerns?|for fear|"
    r"so that|in order to|to avoid|to prevent|since|blamed|caused by|reasons?|risks?|fears?|wary of|threat|"
    r"led to|leading to|resulted in|result of|thanks to|stemming from|driven by|triggered by|"
    r"(?:sparked|prompted|fuell?ed|spurred) by|in response to|"
    r"could|concerns? (?:about|over|that))\b",
    re.I)
_NUMBER_IN_TEXT = re.compile(
    # a count, not an ordinal ("74th"), a year alone ("2022") or part of a name ("Covid-19", "F-35")
    r"(?<![a-z]-)(?<![a-z\d.,])(?!(?:19|20)\d\d\b)\d[\d,.]*(?!\d|st\b|nd\b|rd\b|th\b)"
    r"|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|dozen|twenty|thirty|"
    r"forty|fifty|hundred|thousand|million|billion|trillion|"
    r"half|third|quarter|percent)\b", re.I)
# What a sentence must hold, new to the question, to have the kind asked (REASON and names aside).
_IN_TEXT = {TIME: TIME_IN_TEXT, DURATION: DURATION_IN_TEXT, NUMBER: _NUMBER_IN_TEXT}
# A game's score ("7-0", "2–1"): what "what was the score" asks for; "two goals" is no score.
SCORE_IN_TEXT = re.compile(r"(?<![\d.,-])\d{1,3}\s?[-–]\s?\d{1,3}(?![\d-])")
_ASKS_SCORE = re.compile(r"\bscores?\b", re.I)


# An age: "26-year-old", "113 million years old", "aged 67", "at the age of 94", "died at 82",
# "turned 17", "Walton, 77, takes over", "he was 82": what "how old" asks for ("13-under 271"
# is a number, no age).
AGE_IN_TEXT = re.compile(
    r"\b\d{1,3}(?:[ -](?:million|billion|thousand))?[ -]years?[ -]old\b"
    r"|\b\d{1,3}(?:\.\d+)?[ -](?:million|billion|thousand)[ -]years?[ -]ago\b"
    r"|\b(?:aged?|at the age of|at age|died at|dies at|turned|turns)\s+\d{1,3}\b"
    r"|(?<=[a-z], )\d{1,3}(?=,)"
    r"|(?:(?<=\bhe is )|(?<=\bhe was )|(?<=\bshe is )|(?<=\bshe was )|(?<=\bwho is )|(?<=\bwho was ))"
    r"\d{1,3}\b(?![.,]?\d| ?%| (?:percent|million|billion))",
    re.I)
_ASKS_AGE = re.compile(r"\bhow old\b|\bwhat age\b", re.I)


# Money: "$4.65 billion", "£2m", "15 million dollars": what "how much did they pay" asks for ("a
# jury of five men and two women" is a number, no price).
MONEY_IN_TEXT = re.compile(
    r"(?:US)?[$£€¥]\s?\d[\d,]*(?:\.\d+)?(?:\s?(?:million|billion|trillion|thousand|[mbk]n?)\b)?"
    r"|\b\d[\d,]*(?:\.\d+)?\s(?:(?:million|billion|trillion|thousand)\s)?"
    r"(?:dollars|euros|pounds|yen|yuan|rupees)\b",
    re.I)
_ASKS_MONEY = re.compile(
    r"\bhow much\b.*\b(?:pay|pays|paid|paying|cost|costs|costing|worth|sell|sells|sold|selling|go for|"
    r"went for|going for|spend|spent|spending|earn|earns|earned|earning|owe|owes|owed|fined?|make|"
    r"makes|made|win|wins|won|award|awarded|charge|charged|bid|donate|donated|money|salary|fee)\b", re.I)

# A count of a unit of time or play: "how many years did he get" asks for "12 years", "for how
# many years" for "a two-year extension", not the deal's "$85 million".
_ASKS_UNITS = re.compile(r"\bhow many (years|months|weeks|days|hours|minutes|games|seasons)\b", re.I)
_COUNT = (r"(?:\d[\d,.]*|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|"
          r"twenty|thirty|forty|fifty|sixty|a hundred|hundreds of|a dozen|dozens of|several)")


@functools.lru_cache(maxsize=16)
def _units_in_text(unit: str) -> re.Pattern[str]:
    """A count of `unit` (plural, as asked) in a sentence: "12 years", "two-year", "187 minutes"."""
    # (not an age: "the 37-year-old")
    return re.compile(rf"\b{_COUNT}[ -](?:[\w-]+ )?{re.escape(unit[:-1])}s?\b(?![ -]old\b)", re.I)


# A number question that asks for a particular number, and what that number looks like in a
# sentence: a game's score ("what was the score"), an age ("how old"), a sum ("how much did
# they pay"). The first whose question matches.
_PARTICULAR = ((_ASKS_SCORE, SCORE_IN_TEXT), (_ASKS_AGE, AGE_IN_TEXT), (_ASKS_MONEY, MONEY_IN_TEXT))


def asked_number(question: str, kind: str) -> re.Pattern[str] | None:
    """What a number question asks for when it asks for a particular one (a score, an age, a sum
    of money: its pattern), else None (any number). One place for holds_kind and the phrase."""
    if kind != NUMBER:
        return None
    units = _ASKS_UNITS.search(question)
    if units is not None:
        return _units_in_text(units.group(1).lower())
    return next((found for asks, found in _PARTICULAR if asks.search(question)), None)


# A capitalised word that is not merely the first of its sentence: a name, a place, a title.
_CAPITALISED = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-Z][\w'’.-]*[a-z0-9]\w*|\b[A-Z]{2,}\b")

_WORD = re.compile(r"\w+")

# Lines that are part of a web page, not of the story: never an answer.
_BOILERPLATE = re.compile(
    r"sign up|newsletter|subscribe|all rights reserved|click here|read more|follow us|"
    r"\bphoto(?:graph)?s?\b.*\b(?:getty|ap|reuters|afp)\b|getty images|\bcredit:|"
    r"^\s*(?:updated|published|posted)\b|^\s*by [A-Z]|cookie|advertisement|"
    r"download the app|watch:|listen:|related:|more from|this story has been updated",
    re.I)


@dataclass(frozen=True)
class Weights:
    """How much each feature counts; benchmarks/answers.py measured these on the news dev set."""

    overlap: float = 0.8  # idf-weighted share of the question's terms found in the sentence
    passage: float = 0.3  # the passage's own search score, as a share of the best result's
    kind: float = 0.6  # the sentence holds what the question asks for (a name, a date, a number)
    # Share of the sentence's words the question lacks: negative, since new names and the kind
    # asked already reward what is new, and what is left rewards wandering off the subject.
    novelty: float = -0.5
    lead: float = 0.5  # the sentence is near the top of its article (news puts the facts first)
    names: float = 0.7  # new names (capitalised words the question lacks), up to three
    # The sentence's cosine to the question, its vector pooled from the passage's word pieces at
    # index time (sentvecs.py); 0 when the index has none. Added beside the fitted weights: on
    # both dev sets it changed no quiz question and helped chat questions (docs/answers.md).
    cosine: float = 1.0
    # Below this no sentence is emphasised: the highest floor that hides no right sentence on
    # half A of either dev set, quiz or chat (docs/answers.md). With the cosine in the score (it
    # adds ~0.4-0.7) that is 1.3; without it (an index written before sentence vectors) 0.7.
    floor: float = 1.3
    floor_without_cosine: float = 0.7
    # A sentence whose cosine to the question is under this is never the answer, whatever it
    # scores: the question is about something the articles do not hold and the sentence won on a
    # shared word ("who won the world cup" led with "The Lightning won the last two Stanley Cups";
    # "whats the capital of france" with a Dijon mustard shop). The highest that moves no
    # right sentence on half A of both dev sets; of the 135 unanswerable questions it leaves 42
    # answered, not 65 (docs/answers.md). Not for a follow-up (answer.choose_for).
    min_cosine: float = 0.35
    # The kind counts this many times over for a superlative question ("which state has the
    # priciest gas"): a sentence naming a state but no "highest" does not say which, yet its lead
    # and names outscored the one that does. On half A 1.5-2 helped as much (1.25 less, 3 lost a
    # quiz question), so the middle; half B did not move (docs/answers.md).
    superlative: float = 1.75
    # Added when the sentence has none of the question's words. 0 for a question: -0.2 to -0.6
    # cost half A a quiz question. A follow-up's few typed words are what it asks, so there
    # answer.choose_for sets FOLLOW_UP_UNRELATED (docs/answers.md).
    unrelated: float = 0.0


@dataclass(frozen=True)
class Features:
    """One sentence's evidence, each in [0, 1]."""

    overlap: float
    passage: float
    kind: float
    novelty: float
    lead: float
    names: float
    usable: bool  # False for a question, boilerplate, or a fragment: never chosen
    cosine: float = 0.0  # to the question; 0 when unknown

    def score(self, w: Weights) -> float:
        """The weighted sum; -1 for a sentence that must not be chosen."""
        if not self.usable:
            return -1.0
        return (w.overlap * self.overlap + w.passage * self.passage
                + w.kind * self.kind + w.novelty * self.novelty + w.lead * self.lead
                + w.names * self.names + w.cosine * self.cosine
                + (w.unrelated if self.overlap == 0 else 0.0))


def question_kind(question: str) -> str:
    """What the question asks for: PERSON, TIME, DURATION, NUMBER, PLACE, REASON or THING."""
    if _DURATION_RE.search(question):
        return DURATION
    if _REASON_RE.search(question):
        return REASON
    if _NUMBER_RE.search(question):
        return NUMBER
    time = _TIME_RE.search(question)
    # "when" after another question word is a clause of its ("where was he standing when it
    # hit", "what did the rnc say when it censured her"): that word asks.
    if time and not _WH.search(question, 0, time.start()):
        return TIME
    if _PLACE_RE.search(question):
        return PLACE
    if _PERSON_RE.search(question):
        return PERSON
    return THING


# A sentence that opens by pointing at the one before ("That's the jackpot for…" after "$1.1
# billion", "That's up from 65%…") says what it says of something it does not name: alone it
# answers nothing. The sentence it points at competes on its own.
_POINTS_BACK = re.compile(r"(?:That['’]s|That is|This is|Those are|These are)\b")


def usable(sentence: str, alone: bool = False, title: str = "", credited: bool = False) -> bool:
    """False for what can't be an answer: a question, boilerplate, a caption-sized fragment, page
    furniture (a caption, a gallery line, a teaser: furniture.py), a sentence that opens by
    pointing at the one before ("That's up from 65% last year."), or the article's headline
    (`title`: the reply shows it on the source line already). `alone`: the sentence is all of
    its line; `credited`: the rest of its line is a photo credit (it is a caption)."""
    if credited:
        return False
    text = sentence.strip()
    if text.endswith("?") or text.rstrip("\"'”’)").endswith("?"):
        return False
    if len(text.split()) < 4:
        return False
    if is_furniture(text, alone) or is_headline(text, title) or _POINTS_BACK.match(text):
        return False
    return not _BOILERPLATE.search(text)


def is_headline(sentence: str, title: str) -> bool:
    """True when the sentence is the article's title line (the title may be cut short, with "…")."""
    head = squeeze(title.rstrip("…").rstrip())
    return len(head) >= 12 and squeeze(sentence).startswith(head)


def squeeze(text: str) -> str:
    """The text's words, casefolded, one space apart: a sentence as compared, however spaced."""
    return " ".join(_WORD.findall(text.casefold()))


def asks_superlative(question: str, kind: str) -> bool:
    """Whether the question asks which one is the most something ("which state has the priciest
    gas", "where will it rain most"): holds_kind then needs a superlative in the sentence."""
    return kind in (PERSON, PLACE, THING) and bool(_SUPERLATIVE.search(question))


def holds_kind(sentence: str, kind: str, question: str, names: Sequence[str] | None = None) -> bool:
    """True when the sentence has something of the kind asked that the question lacks (`names`:
    its kind_names, when already found). "Which state has the priciest gas?" asks for the one
    that is most something: a sentence that names a state but no highest, biggest or most does
    not say which."""
    if kind == REASON:
        return bool(_REASON_IN_TEXT.search(sentence))
    pattern = asked_number(question, kind) or _IN_TEXT.get(kind)
    if pattern is not None:
        return first_new(pattern.finditer(sentence), question) is not None
    if not (names if names is not None else kind_names(sentence, kind, question)):
        return False
    known = places.asked(question) if kind == PLACE else None
    if known is not None and first_new(known.finditer(strip_tags(sentence)), question) is None:
        return False  # "which country…": the capital, the ministry, the president are no country
    return not asks_superlative(question, kind) or bool(_SAYS_SUPERLATIVE.search(sentence))


# "the most", "the highest", "the biggest": what a superlative question needs its answer to say
# ("latest" and "newest" are time words in a question, not superlatives).
_SUPERLATIVES = (
    "best|worst|highest|lowest|biggest|largest|smallest|greatest|fastest|slowest|oldest|youngest|"
    "longest|shortest|richest|poorest|deadliest|priciest|cheapest|costliest|hottest|coldest|"
    "strongest|weakest|tallest|heaviest|busiest|wealthiest")
_SUPERLATIVE = re.compile(rf"\b(?:most|least|{_SUPERLATIVES})\b", re.I)
# In an answer "most" and "least" are superlatives after "the" ("the most rain"), not in "most
# Americans" or "most of the West".
_SAYS_SUPERLATIVE = re.compile(rf"\bthe (?:most|least)\b|\b(?:{_SUPERLATIVES})\b", re.I)


def first_new(matches: Iterable[re.Match[str]], question: str) -> re.Match[str] | None:
    """The first match whose words the question does not already hold ("2022" in "who won in
    2022?" tells nothing new)."""
    asked = question.lower()
    return next((m for m in matches if m.group().lower() not in asked), None)


def features(
    sentence: str,
    question: str,
    terms: Mapping[str, float],
    kind: str,
    *,
    stopwords: frozenset[str],
    stemmer: str,
    passage: float = 0.0,
    offset: int = 0,
    alone: bool = False,
    title: str = "",
    credited: bool = False,
    cosine: float | None = None,
    check: bool = True,
) -> Features:
    """The evidence that `sentence` answers `question`.

    `terms` maps each of the question's (stemmed) terms to its idf; `passage` is its passage's
    score relative to the best result's, and `offset` where the sentence starts in its article
    file, in characters; `alone` whether it is all of its line, `title` its article's title,
    `credited` whether a photo credit follows it on its line.
    `check=False` leaves `usable` True for the caller to ask usable() of the few that could win
    (best(): half the time of scoring went to the furniture and boilerplate patterns).
    """
    base = _base_forms(stemmer)
    words = [base.get(w, w) for w in tokenize(sentence, stopwords, stemmer)]
    have = set(words)
    total = sum(terms.values())
    overlap = sum(v for t, v in terms.items() if base.get(t, t) in have) / total if total else 0.0
    novelty = sum(1 for w in words if w not in terms) / len(words) if words else 0.0
    names = kind_names(sentence, kind, question)
    return Features(
        overlap=overlap, passage=max(0.0, min(1.0, passage)),
        kind=1.0 if holds_kind(sentence, kind, question, names) else 0.0, novelty=novelty,
        lead=1.0 if offset < LEAD_CHARS else 0.0,
        # New names answer "who", "where" and "which" (and name a "why"'s cause: "Wary of head
        # trauma, Borland…"); for "when" and "how many/long" they are noise.
        names=0.0 if kind in (TIME, NUMBER, DURATION) else min(3, len(names)) / 3,
        usable=usable(sentence, alone, title, credited) if check else True,
        cosine=max(0.0, cosine) if cosine is not None else 0.0,
    )


# Irregular past forms a stemmer leaves apart from their verb: "who won the cup" is answered by
# "… to win the team's first Stanley Cup" as much as by "… won the last two Cups".
IRREGULAR = {
    "won": "win", "lost": "lose", "paid": "pay", "sold": "sell", "bought": "buy", "ran": "run",
    "made": "make", "took": "take", "taken": "take", "held": "hold", "met": "meet", "fell": "fall",
    "fallen": "fall", "found": "find", "gave": "give", "given": "give", "wrote": "write",
    "written": "write", "spent": "spend", "built": "build", "caught": "catch", "brought": "bring",
    "kept": "keep", "began": "begin", "begun": "begin", "struck": "strike", "shot": "shoot",
    "stole": "steal", "stolen": "steal", "chose": "choose", "chosen": "choose", "drove": "drive",
    "driven": "drive", "ate": "eat", "eaten": "eat", "flew": "fly", "flown": "fly", "grew": "grow",
    "grown": "grow", "sank": "sink", "sunk": "sink", "broke": "break", "broken": "break",
    "led": "lead", "fought": "fight", "sent": "send", "rose": "rise",
    "risen": "rise", "swore": "swear", "sworn": "swear", "withdrew": "withdraw", "froze": "freeze",
}


@functools.cache
def _base_forms(stemmer: str) -> dict[str, str]:
    """IRREGULAR as the stemmer writes both sides (once per stemmer)."""
    forms = {}
    for past, verb in IRREGULAR.items():
        (a,), (b,) = tokenize(past, frozenset(), stemmer), tokenize(verb, frozenset(), stemmer)
        if a != b:
            forms[a] = b
    return forms


def kind_names(sentence: str, kind: str, question: str) -> list[str]:
    """new_names as evidence of the kind asked: for "where", not a dateline's places ("LIMA, Peru
    (AP) —" says where the story was filed, not where it happened)."""
    return new_names(strip_tags(sentence) if kind == PLACE else sentence, question)


def new_names(sentence: str, question: str) -> list[str]:
    """Capitalised words of the sentence (not its first word) that the question doesn't have."""
    asked = _asked(question)
    return [w for m in _CAPITALISED.finditer(sentence) for w in _WORD.findall(m.group())
            if len(w) > 1 and w.lower() not in asked]


@functools.lru_cache(maxsize=64)
def _asked(question: str) -> frozenset[str]:
    """The question's words, lowercased (asked of every candidate sentence)."""
    return frozenset(w.lower() for w in _WORD.findall(question))


# The first paragraphs of a news article (about 3 sentences) carry who, what, when and where.
LEAD_CHARS = 600


def best(scores: Sequence[float], floor: float,
         usable: Callable[[int], bool] = lambda i: True) -> int | None:
    """The index of the highest score at or above `floor` whose sentence is `usable` (asked from
    the best down, so only of the few that could win), or None (then nothing is emphasised).
    Ties go to the earlier sentence."""
    for i in sorted(range(len(scores)), key=lambda j: -scores[j]):
        if scores[i] < floor or scores[i] <= -1.0:
            return None
        if usable(i):
            return i
    return None
