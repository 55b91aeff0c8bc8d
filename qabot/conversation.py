"""Follow-up questions in a chat: which lean on the previous one, and the query to search for them.

"How many did he hit?" says nothing on its own; after "Who set the home run record?" it does.
A message that leans on the previous question (a pronoun with nothing in the message it could
refer to, an opening like "and…" or "what about…", a bare "why?") is searched with that
question's content words appended: its own words come first and the borrowed ones only add
to them, so "what about JetBlue?" still asks about JetBlue.

Words, not a parser: "How many Super Bowls did he win?" does not lean (a name comes before
"he"); typed in lowercase, where names can't be seen, a pronoun after a noun-like phrase ("when
did tom brady announce his retirement") leans but leaves the decision to what the searches find
(answer.stands_alone), and only a pronoun with nothing it could stand for settles it
(refers_back). A reply to the bot's answer always follows up, whatever it says. `Memory` keeps
the last turns of each chat, in memory only and bounded, for the bot.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

FOLLOW_UP_SECONDS = 600.0  # a leaning message later than this starts afresh (unless it is a reply)
MAX_CONTEXT_WORDS = 24  # borrowed words at most: a chain of follow-ups must not snowball
MAX_QUERY_CHARS = 2000  # retrieve.MAX_QUESTION_CHARS (not imported: this module stays light)


@dataclass(frozen=True)
class Turn:
    """One answered question: what was asked, what was searched, the articles found, when."""

    question: str
    query: str  # the question with any borrowed context: a follow-up of a follow-up keeps it
    doc_ids: tuple[str, ...]  # the articles of the answer, best first
    time: float  # seconds on the caller's clock (monotonic in the bot)
    said: str = ""  # the sentence the answer led with ("" when none): a follow-up never repeats it

    def said_to(self, message: str) -> str:
        """The sentence this answer led with, as a message after it must not lead with again; ""
        when the message asks the same question word for word (then the same answer is right)."""
        return self.said if message != self.question else ""


# Words that stand for something said before. "that"/"this"/"there" are handled on their own:
# they are often a conjunction, a time ("this week") or existential ("is there").
_PERSONAL = frozenset("he she him his her hers they them their theirs it its".split())
_DEICTIC = frozenset("that this these those".split())
# "that"/"this" after these is a thing pointed at ("did that happen", "about this"); after a
# noun or a verb of saying it is a relative pronoun or a conjunction ("said that …").
_BEFORE_POINTER = frozenset(
    "did does do is was are were will would can could about of for to with after before from by "
    "into on in at than caused cause causes mean means like why when where how".split())
_TIME_WORDS = frozenset(
    "year week month weekend morning afternoon evening night season summer winter spring fall "
    "autumn time day decade century quarter".split())
_EXISTENTIAL = frozenset("is are was were be been 's".split())
# The openings that ask the previous question again of something else ("and the women's
# winner?", "what about the lakers"): alone they lack what is asked, so a search of the message
# alone can't overrule them. The other openings only lean: "so…", "but…" may open a new topic.
_ASKS_AGAIN = r"and|what about|how about|what else"
_ELLIPSIS = re.compile(rf"^\s*(?:{_ASKS_AGAIN})\b", re.IGNORECASE)
_OPENING = re.compile(
    rf"^\s*(?:{_ASKS_AGAIN}|but|also|so|or|plus|then|why not|how come|since when)\b", re.IGNORECASE)
# Function words, question words and pronouns: what is left of a question is its content.
_STOP = frozenset(
    "a an and are as at be but by for if in into is it no not of on or such that the their then "
    "there these they this to was will with what who whom whose which when where why how many "
    "much did does do done was were been being has have had can could would should shall may "
    "might must i you we me my your our us he she him his her hers them its theirs those about "
    "also so than too very just any some all more most other else again ever still yet please "
    "tell know say said says get gets got happen happened happens there's it's what's who's "
    # … and as chat types them, without the apostrophe
    "whats whos wheres whens hows thats theres im ive dont doesnt didnt isnt wasnt arent "
    "werent cant wont "
    # pronouns of no one in particular: "is anyone hurt" asks about "hurt"
    "anyone anybody anything someone somebody something everyone everybody everything".split())
# Time words say when, not what about: borrowed into a follow-up they would carry the previous
# question's window ("who runs the broncos now" → "how much did they pay" is no "now" question).
_TIME = frozenset(
    "now latest newest recent recently currently lately nowadays today tonight yesterday".split())

_WORD = re.compile(r"[^\W_]+(?:['’.-][^\W_]+)*")
_SENTENCE_END = frozenset('.?!:;"“(')  # after one of these (and spaces), capitals say nothing


def _words(text: str) -> list[tuple[str, bool]]:
    """The message's words, each with whether it starts a sentence (where capitals say nothing).
    Only the gap since the previous word is looked at: a word ends in a letter or digit, so what
    ends a sentence before this word lies in that gap (searching the whole prefix was quadratic)."""
    out = []
    end = 0
    for m in _WORD.finditer(text):
        gap = text[end : m.start()].rstrip()
        out.append((m.group(), (not gap and end == 0) or gap[-1:] in _SENTENCE_END))
        end = m.end()
    return out


def _is_name(word: str, initial: bool) -> bool:
    """A word that looks like a named entity: capitalised mid-sentence, or with inner capitals
    or all capitals anywhere (JetBlue, NASA), or a number that names something (2022, 737)."""
    if word.lower() in _PERSONAL | _DEICTIC | {"i", "there"}:
        return False
    if any(c.isupper() for c in word[1:]) and any(c.islower() for c in word) or (
            len(word) > 1 and word.isupper()):
        return True
    if word.isdigit():
        return len(word) >= 3
    return word[:1].isupper() and not initial


def leans_on_previous(message: str) -> bool:
    """Whether the message needs the previous question to be understood: it opens like a follow-up
    ("and …", "what about …"), has a pronoun with no name before it in the message to refer to,
    or names nothing and says too little to stand alone. A message with its own subject does not
    lean."""
    if _OPENING.match(message):
        return True
    words = _words(message)
    names = [_is_name(w, initial) for w, initial in words]
    lowered = [w.lower() for w, _ in words]
    return _pointer(message, words, names) is not None or _elided(lowered) or (
        not any(names) and _says_little(message, lowered))


# "one" standing for a noun said before ("where is the 2025 one", "which one is cheaper", "who won
# the last one"), not a number or a pronoun of its own ("one of the pilots", "no one", "one
# person"); and a closing word whose object was said before ("what did china do after").
_NOT_PROFORM_BEFORE = frozenset("no every any some each number".split())
_PROFORM_AFTER = frozenset(
    "is was are were will would did does do has had have can could should better worse cheaper "
    "bigger".split())
_ELIDED_END = frozenset("after afterwards afterward instead".split())


def _elided(lowered: list[str]) -> bool:
    """Whether a word of the message stands for something said before (its noun or its object)
    though no pronoun does: it leans, and the evidence decides (answer.stands_alone)."""
    if lowered and lowered[-1] in _ELIDED_END:
        return True
    for i, low in enumerate(lowered):
        if low not in ("one", "ones") or i == 0 or lowered[i - 1] in _NOT_PROFORM_BEFORE:
            continue
        after = lowered[i + 1] if i + 1 < len(lowered) else ""
        if not after or after in _PROFORM_AFTER:
            return True
    return False


def refers_back(message: str) -> bool:
    """Whether the message has a pronoun with nothing in it to refer to ("when will it end?"), or
    opens by asking the previous question again ("and the women's winner?", "what about…"):
    the strongest signs of a follow-up, which a search of the message alone can't overrule. A
    pronoun that may have its noun in the message ("when did tom brady announce his retirement",
    typed without capitals) leans, but leaves the decision to the evidence."""
    if _ELLIPSIS.match(message):
        return True
    words = _words(message)
    return _pointer(message, words, [_is_name(w, initial) for w, initial in words]) == "sure"


Pointer = Literal["sure", "maybe"]  # a pronoun that points outside the message / may point inside


def _pointer(message: str, words: list[tuple[str, bool]], names: list[bool]) -> Pointer | None:
    """"sure" when a word of the message points outside it, "maybe" when it might point inside
    instead, None when nothing points back."""
    # "it" is a thing: any name in the message may be it ("Did it buy Twitter?" has a subject);
    # "he", "they"… need a name before them ("Did Biden say he would run?").
    asks_which = bool(_WHICH_THING.match(message))
    # Where the first name is, once: asking any(names[:i]) at every word made a long message
    # quadratic (28 s at 100,000 characters).
    first_name = next((i for i, name in enumerate(names) if name), len(names))
    named = first_name < len(names)
    # Typed without capitals, a name can't be seen: the first noun-like phrase may be one.
    lowered = [w.lower().replace("’", "'") for w, _ in words]
    first_noun = _first_noun(lowered) if message == message.lower() else len(words)
    found: Pointer | None = None
    for i, low in enumerate(lowered):
        if asks_which and low in _POSSESSIVE:
            continue  # "Which company split its stock?": its own subject's stock
        if names[i] or not _points_back(words, i, named_before=first_name < i, named=named):
            continue
        if low == "it" and _dummy_it(lowered, i):
            continue  # "how hot did it get", "will it rain": the weather's "it" stands for nothing
        if not _may_point_inside(lowered, i, first_noun < i, asks_which):
            return "sure"
        found = "maybe"
    return found


# Words that make a message's lowercase words a noun phrase, a possible antecedent: "the rnc said
# it…", "which country says it is…" (a name typed in lowercase is two content words in a row).
_DETERMINERS = frozenset("the a an which whose".split())
# Not antecedents though not in _STOP: "is anyone suing them?" still points back.
_INDEFINITE = frozenset(
    "anyone anybody anything someone somebody something everyone everybody everything nobody "
    "nothing whats whos".split())
# Words after "it" that make it a subject ("which company said it would…", "it plans"), which may
# be the message's own thing ("which network airs it?" points back: an object). Any content
# word after "it" counts too (_may_point_inside).
_AFTER_SUBJECT = frozenset("is was are were will would has had have can could should may might "
                           "does did 's plans wants".split())
# The weather's "it", near "it" in "how hot did it get", "is it going to rain".
_WEATHER = frozenset(
    "hot hotter hottest cold colder coldest warm warmer cool rain raining rained rains snow snowing "
    "snowed snows windy wet dry humid sunny cloudy freezing temperature temperatures".split())


def _may_point_inside(lowered: list[str], i: int, noun_before: bool, asks_which: bool) -> bool:
    """Whether the pronoun lowered[i] may stand for a noun of the message itself. "it" only as
    a subject ("the rnc said it…", "which company said it would…"): an object "it" ("which
    network airs it?") is what the previous answer was about."""
    low = lowered[i]
    if low not in _PERSONAL:
        return False
    if low != "it":
        return noun_before
    after = lowered[i + 1] if i + 1 < len(lowered) else ""
    subject = after in _AFTER_SUBJECT or (bool(after) and _contentful(after))
    return subject and (noun_before or asks_which)


def _first_noun(lowered: list[str]) -> int:
    """Where the first word that may belong to a noun phrase is (len(lowered): none): a content
    word after a determiner or after another content word ("tom brady", "super bowls"), not an
    adjective asked about ("how long", "how old"). One pass: the message may be long."""
    for i in range(1, len(lowered)):
        word, before = lowered[i], lowered[i - 1]
        if not _contentful(word):
            continue
        if before in _DETERMINERS or (_contentful(before) and (i < 2 or lowered[i - 2] != "how")):
            return i
    return len(lowered)


def _contentful(word: str) -> bool:
    return word not in _STOP and word not in _TIME and word not in _INDEFINITE and word not in _PERSONAL


def _dummy_it(lowered: list[str], i: int) -> bool:
    return any(w in _WEATHER for w in lowered[max(0, i - 3) : i + 4])


# "Which company…", "What team…": the question's own subject, which a possessive refers to.
_WHICH_THING = re.compile(
    r"^\s*(?:which|what|whose)\s+(?!(?:is|was|are|were|did|does|do|has|have|had|will|would|can|"
    r"could|should|about|else)\b)[^\W\d_]", re.IGNORECASE)
_POSSESSIVE = frozenset(("his", "her", "its", "their"))
_COUNTING = re.compile(r"^\s*how (?:many|much)\b", re.IGNORECASE)


def _says_little(message: str, words: list[str]) -> bool:
    """A message naming nothing that is too thin to stand alone: a few words ("Who won?"), one
    content word ("Why is there a shortage?"), or two with a definite "the" pinned to nothing
    ("Where does the money go?") or a count of nothing named ("How many people died?").
    "What causes inflation?" and "Is there a vaccine for monkeypox?" stand alone."""
    content = len(content_words(message))
    if len(words) <= 3 or content <= 1:
        return True
    return content == 2 and ("the" in words or bool(_COUNTING.match(message)))


def _points_back(words: list[tuple[str, bool]], i: int, named_before: bool, named: bool) -> bool:
    """Whether words[i] refers to something outside the message."""
    low = words[i][0].lower().replace("’", "'")
    before = words[i - 1][0].lower() if i else ""
    after = words[i + 1][0].lower() if i + 1 < len(words) else ""
    if low in ("it", "its"):
        return not named
    if low in _PERSONAL:
        return not named_before
    if low in _DEICTIC:  # "did that happen", "why decide that?", not "said that …" or "this year"
        return after not in _TIME_WORDS and (i == 0 or not after or before in _BEFORE_POINTER)
    if low == "there":  # "what happened there?", not "is there …" or "there were …"
        return not named_before and before not in _EXISTENTIAL and after not in _EXISTENTIAL
    return low in ("that's", "it's") and i == 0


def content_words(text: str) -> list[str]:
    """The words of a question that say what it is about, in order, each once (case-blind)."""
    seen: set[str] = set()
    out = []
    for word, _ in _words(text):
        low = word.lower().replace("’", "'")
        if low in _STOP or low in _TIME or low in seen or (len(low) < 2 and not low.isdigit()):
            continue
        seen.add(low)
        out.append(word)
    return out


def _subject_first(previous: Turn) -> list[str]:
    """The previous query's content words, those it borrowed itself first: in a chain of
    follow-ups the first question's subject is kept, and the cap cuts the latest details."""
    asked = content_words(previous.question)
    mine = {w.lower() for w in asked}
    return [w for w in content_words(previous.query) if w.lower() not in mine] + asked


def contextualize(message: str, previous: Turn | None, now: float, is_reply: bool) -> str:
    """The query to search for a message: the message itself, or, when it follows up `previous`
    (a reply to its answer, or a message leaning on it within FOLLOW_UP_SECONDS), the message
    followed by the content words of the previous query that it does not already have."""
    if previous is None:
        return message
    if not is_reply and (now - previous.time > FOLLOW_UP_SECONDS or not leans_on_previous(message)):
        return message
    own = {w.lower() for w in content_words(message)}
    borrowed = [w for w in _subject_first(previous) if w.lower() not in own][:MAX_CONTEXT_WORDS]
    if not borrowed:
        return message
    query = f"{message.strip()} ({' '.join(borrowed)})"
    if len(query) > MAX_QUERY_CHARS:  # keep the message whole; drop borrowed words from the end
        query = query[: MAX_QUERY_CHARS - 1].rsplit(" ", 1)[0] + ")"
    return query if len(query) <= MAX_QUERY_CHARS else message


class Memory:
    """The last turns of each chat, for follow-ups: in memory only (nothing on disk or in logs),
    at most `chats` chats (the least recently active forgotten first) and `turns` turns a chat,
    each with the ids of the bot's messages that answered it, so a reply to one finds its turn.

    Not thread-safe: the bot calls it from its event loop only.
    """

    def __init__(self, chats: int = 1000, turns: int = 2) -> None:
        self.chats, self.turns = chats, turns
        self._chats: OrderedDict[int, list[tuple[Turn, frozenset[int]]]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._chats)

    def last(self, chat: int) -> Turn | None:
        """The chat's latest turn, if any is remembered."""
        kept = self._chats.get(chat)
        return kept[-1][0] if kept else None

    def answered_by(self, chat: int, message_id: int) -> Turn | None:
        """The remembered turn that one of the bot's messages in this chat answered."""
        for turn, ids in reversed(self._chats.get(chat, [])):
            if message_id in ids:
                return turn
        return None

    def remember(self, chat: int, turn: Turn, message_ids: Sequence[int]) -> None:
        """Keep a turn and the ids of the messages that answered it; forget what falls out."""
        kept = self._chats.pop(chat, [])
        kept = [*kept, (turn, frozenset(message_ids))][-self.turns:]
        self._chats[chat] = kept
        while len(self._chats) > self.chats:
            self._chats.popitem(last=False)

    def forget(self, chat: int) -> bool:
        """Forget the chat's turns (/new); whether there was anything to forget."""
        return self._chats.pop(chat, None) is not None
