"""Small talk: a friendly reply to "hi", "thanks", "bye", "what can you do", "ok" or 👍, and a
pointer back to the news for chit-chat no article answers ("tell me a joke"); None otherwise.

Precision over recall: a message is small talk only when every word of it belongs to a known
small-talk phrase ("hi there", "thank you so much", "ok thanks bye"). One word left over — "hi,
who won the US Open?" — and it is a question for the search, so the answer is None.
"""

from __future__ import annotations

import re
import unicodedata
from enum import Enum


class Kind(Enum):
    """What a small-talk message is."""

    HELP = "help"
    HOW_ARE_YOU = "how_are_you"
    THANKS_BYE = "thanks_bye"
    THANKS = "thanks"
    BYE = "bye"
    GREETING = "greeting"
    ACK = "ack"
    EMOJI = "emoji"
    BEYOND = "beyond"  # chit-chat no news article answers: "tell me a joke", "what time is it"


_EXAMPLE = "“What did the Fed decide about interest rates?”"
REPLIES = {
    Kind.HELP: ("I answer questions about the news articles I have read, quoting the passage with "
                f"its title, date and source. Just ask, e.g. {_EXAMPLE}"),
    Kind.HOW_ARE_YOU: "I'm well, thanks! What would you like to know about the news?",
    Kind.THANKS_BYE: "You're welcome! Bye for now, come back with any news question.",
    Kind.THANKS: "You're welcome! Ask me anything else about the news.",
    Kind.BYE: "Bye! Come back whenever you have a news question.",
    Kind.GREETING: f"Hello! Ask me a question about the news, e.g. {_EXAMPLE}",
    Kind.ACK: "👍 Ask me another question whenever you like.",
    Kind.EMOJI: "🙂 Ask me a question about the news whenever you like.",
    Kind.BEYOND: ("That's beyond me: I only know the news articles I have read. Ask me about them, "
                  f"e.g. {_EXAMPLE}"),
}

# Phrases, by kind; a message is small talk when it is a sequence of these (and fillers).
_PHRASES: dict[Kind, tuple[str, ...]] = {
    Kind.HELP: (
        "help", "help me", "help please", "please help", "/help", "/start", "start", "who are you",
        "what are you", "what can you do", "what do you do", "what can i ask", "what can i ask you",
        "what should i ask", "how does this work", "how do you work", "how do i use this",
        "what is this", "what's this", "are you a bot", "are you human", "are you a robot",
        "what is your name", "what's your name", "who made you", "tell me about yourself",
    ),
    Kind.HOW_ARE_YOU: (
        "how are you", "how are you doing", "how r u", "how are u", "how's it going",
        "hows it going", "how is it going", "what's up", "whats up", "wassup", "sup", "how do you do",
        "how have you been", "you ok", "are you ok", "ça va", "ca va", "comment ça va", "qué tal",
        "que tal", "wie geht's", "wie gehts", "come stai",
    ),
    Kind.THANKS: (
        "thanks", "thank you", "thank you so much", "thank you very much", "thanks so much",
        "thanks a lot", "thanks a bunch", "thanks a million", "many thanks", "thx", "thnx", "tnx",
        "ty", "tysm", "thank u", "thanku", "cheers", "much appreciated", "appreciate it",
        "i appreciate it", "for the help", "for your help", "for the info", "for the answer",
        "for the answers", "for helping", "that helps", "that helped", "that's helpful",
        "very helpful", "helpful",
        "merci", "merci beaucoup", "danke", "danke schön", "danke schoen", "vielen dank", "gracias",
        "muchas gracias", "grazie", "grazie mille", "obrigado", "obrigada", "спасибо", "dziękuję",
        "dank je", "bedankt", "tack", "takk", "kiitos", "arigato", "谢谢",
    ),
    Kind.BYE: (
        "bye", "bye bye", "byebye", "goodbye", "good bye", "see you", "see ya", "see you later",
        "see you soon", "see you tomorrow", "cya", "later", "laters", "talk later", "talk soon",
        "good night", "goodnight", "night", "nite", "take care", "farewell", "have a nice day",
        "have a good day", "have a great day", "have a good one", "gotta go", "i'm off", "adios",
        "adiós", "au revoir", "à bientôt", "a bientot", "tschüss", "tschuss", "auf wiedersehen",
        "arrivederci", "tchau", "до свидания", "пока",
    ),
    Kind.GREETING: (
        "hi", "hello", "hey", "heya", "hiya", "hallo", "helo", "hullo", "yo", "howdy", "greetings",
        "hey there", "hi there", "hello there", "good morning", "good afternoon", "good evening",
        "good day", "morning", "evening", "gm", "hola", "buenos días", "buenos dias",
        "buenas tardes", "buenas noches", "bonjour", "bonsoir", "salut", "guten tag",
        "guten morgen", "guten abend", "servus", "moin", "ciao", "buongiorno", "buonasera",
        "olá", "ola", "oi", "bom dia", "привет", "здравствуйте", "namaste", "shalom", "salaam",
        "salam", "hej", "hei", "hoi", "你好", "こんにちは", "nice to meet you", "pleased to meet you",
    ),
    # Searched, these quoted a sentence that merely shares a word ("tell me a joke": "… the
    # Acropolis fits that bill…"; "whats your name": "'That's it, that's your name!'"). Only
    # the whole message: "what time is it in kabul" or "tell me a joke about the fed" is searched.
    Kind.BEYOND: (
        "tell me a joke", "tell me another joke", "tell me something funny", "tell me a story",
        "make me laugh", "sing me a song", "sing a song", "sing", "can you sing", "can you dance",
        "write me a poem", "write a poem", "write me a song", "do you dream", "do you sleep",
        "are you alive", "are you real", "are you sentient", "do you have feelings",
        "how old are you", "where are you", "where do you live", "where are you from",
        "do you love me", "i love you", "will you marry me", "you're funny", "you are funny",
        "you're smart", "you are smart", "you're stupid", "you are stupid", "you suck",
        "what time is it", "what's the time", "what day is it", "what's the date", "what's today",
        "what's the weather", "what's the weather like", "how's the weather", "will it rain",
        "what's the meaning of life", "what is the meaning of life", "help me with my homework",
        "can you help me with my homework", "do my homework", "recommend a book",
        "recommend a good book", "recommend a movie", "recommend a good movie", "what should i eat",
        "what should i have for dinner", "what should i cook", "what should i watch",
        "what's your favorite color", "what's your favourite colour", "what's your favorite movie",
        "what's your favourite movie", "what's your favorite food", "what's your favourite food",
        "what's your favorite song", "what's your favourite song", "what's your favorite book",
        "what's your favourite book", "what's your favorite team", "what's your favourite team",
        "do you like me", "do you like pizza", "are you smart", "are you happy",
    ),
    Kind.ACK: (
        "ok", "okay", "okey", "k", "kk", "okie", "cool", "great", "nice", "awesome", "perfect",
        "good", "very good", "fine", "alright", "all right", "got it", "gotcha", "i see", "understood",
        "sure", "sounds good", "makes sense", "wow", "lol", "haha", "hahaha", "interesting", "yes",
        "yeah", "yep", "no", "nope", "nah", "excellent", "amazing", "brilliant", "fair enough",
        "noted", "good to know", "oh", "ah", "hmm", "oh ok", "ah ok", "nice one", "well done",
        "good job", "good bot", "great job", "d'accord", "vale", "genial", "super",
    ),
}
# Words that may ride along with a phrase without making it a question ("hi there bot").
_FILLERS = frozenset(
    "bot qabot there everyone all guys folks friend buddy mate man again too also very so much "
    "and then well oh ah please pls plz for it this that lot :) :-) :( :d ;) <3 x xx".split()
)
_EMOTICONS_RE = re.compile(r"(?:[:;=]-?[)(dpDP]|<3|\s)+")
# An emoji-only message that says something familiar gets that reply.
_EMOJI_KINDS = {Kind.ACK: "👍👌🆗✅", Kind.GREETING: "👋", Kind.THANKS: "🙏❤💙💚💛🧡💜🤍🖤"}
_ORDER = (Kind.HELP, Kind.BEYOND, Kind.HOW_ARE_YOU, Kind.THANKS, Kind.BYE, Kind.GREETING, Kind.ACK)
_TOKEN_RE = re.compile(r"[/\w'’.:;()<>-]+")


def small_talk(message: str) -> str | None:
    """A short friendly reply when `message` is only small talk; None for anything else."""
    kind = classify(message)
    return None if kind is None else REPLIES[kind]


def classify(message: str) -> Kind | None:
    """Which kind of small talk `message` is, or None when any part of it is not small talk."""
    text = unicodedata.normalize("NFKC", message).strip()
    if not text or len(text) > 80:  # small talk is short; a long message is a question
        return None
    if _only_symbols(text):
        if not any(_is_emoji(c) for c in text) and not _EMOTICONS_RE.fullmatch(text):
            return None  # "?", "..." say nothing we can answer
        return next((k for k, marks in _EMOJI_KINDS.items() if any(m in text for m in marks)),
                    Kind.EMOJI)
    words = _words(text)
    if not words:
        return None
    kinds = _cover(words)
    if kinds is None or not kinds:
        return None
    if Kind.THANKS in kinds and Kind.BYE in kinds:
        return Kind.THANKS_BYE
    return next(k for k in _ORDER if k in kinds)


def _words(text: str) -> list[str]:
    """Lower-case words without surrounding punctuation or emoji; ’ read as '."""
    text = "".join(" " if _is_emoji(c) else c for c in text.lower().replace("’", "'"))
    out = []
    for token in _TOKEN_RE.findall(text):
        if token in _FILLERS:  # emoticons keep their punctuation
            out.append(token)
            continue
        token = token.strip(".,;:!?()<>-'")
        if token:
            out.append(token)
    return out


def _cover(words: list[str]) -> set[Kind] | None:
    """The kinds of phrases that together cover every word, or None when some word is left."""
    best: list[set[Kind] | None] = [None] * (len(words) + 1)
    best[0] = set()
    for i in range(len(words)):
        done = best[i]
        if done is None:
            continue
        if words[i] in _FILLERS and i > 0:  # a filler only after a phrase: "so much", "there"
            _merge(best, i + 1, done)
        for n in range(1, min(_LONGEST, len(words) - i) + 1):
            kind = _phrase_kind(words[i : i + n])
            if kind is not None:
                _merge(best, i + n, done | {kind})
    return best[len(words)]


def _merge(best: list[set[Kind] | None], at: int, kinds: set[Kind]) -> None:
    previous = best[at]
    best[at] = kinds if previous is None else previous | kinds


def _phrase_kind(words: list[str]) -> Kind | None:
    for variant in _variants(" ".join(words)):
        kind = _LOOKUP.get(variant)
        if kind is not None:
            return kind
    return None


def _variants(phrase: str) -> tuple[str, ...]:
    """The phrase, and with drawn-out letters shortened ("hiiii", "thanksss", "cooool")."""
    return (phrase, re.sub(r"(\w)\1{2,}", r"\1", phrase), re.sub(r"(\w)\1{2,}", r"\1\1", phrase))


def _only_symbols(text: str) -> bool:
    return all(_is_emoji(c) or c.isspace() or unicodedata.category(c).startswith("P") for c in text)


def _is_emoji(c: str) -> bool:
    """Pictographs, their modifiers and joiners (So, Sk), and the emoji variation selector."""
    return unicodedata.category(c) in ("So", "Sk") or c in "\u200d\ufe0f\u20e3"


# Each phrase also as typed without its apostrophes ("whats your name", "hows it going").
_LOOKUP: dict[str, Kind] = {v: k for k, phrases in _PHRASES.items() for p in phrases
                            for v in (p.replace("'", ""), p)}
# Words in the longest phrase (7: "can you help me with my homework"): derived, so a longer phrase
# added to the lists is matched too.
_LONGEST = max(len(p.split()) for p in _LOOKUP)
