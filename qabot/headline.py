"""An article's title: its headline line, or its first real sentence, without bylines, datelines and promos.

News files often open with boilerplate rather than a headline: an "Updated …" stamp, a byline,
a photo caption, a newsletter sign-up. `headline` skips lines and sentences that are pure
boilerplate, strips the dateline or source tag in front of the first real sentence, and keeps
the result short enough to show in a list (`LIMIT` characters, cut on a word boundary).
"""

from __future__ import annotations

import re
from urllib.parse import unquote

from .chunk import split_sentences

# Bump when the rules below change: the index records it, so `qabot index` rewrites the stored
# titles (and the BM25 part, which indexes them) without re-embedding anything.
TITLE_VERSION = 1
LIMIT = 90
_SCAN_LINES = 12  # boilerplate sits at the top; past this, the first sentence is the title anyway

_MONTH = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?"
_DAY = r"(?:mon|tue|tues|wed|thu|thur|thurs|fri|sat|sun)[a-z]*\.?"
_STAMP_TOKEN = (rf"(?:{_MONTH}|{_DAY}|\d{{1,4}}(?::\d\d)?(?:st|nd|rd|th)?|[ap]\.?m\.?|noon|"
                r"e[sd]?t|p[sd]?t|c[sd]?t|gmt|utc|bst|cest?|\||,|/)")
# "Updated Aug. 21, 2019, 4:52 p.m. ET", "Published 7:00 AM EDT Jun 3, 2022": the words after
# the verb are all date and time tokens; the stamp ends where prose starts.
_STAMP_RE = re.compile(rf"(?:last\s+)?(?:updated|published|posted)(?:\s+(?:on|at))?:?"
                       rf"(?:\s*{_STAMP_TOKEN})+(?=\s|$)\s*", re.IGNORECASE)
# CNN's section names come glued or misspelt too ("(CNNBusiness)", "(CNN Buiness)").
_SOURCES = r"(?:CNN(?: ?[A-Z][a-z]+)?|Reuters|AP|AFP|Bloomberg|CNBC|BBC|Xinhua)"
# "WASHINGTON (CNN) —", "LONDON, June 3 (Reuters) -", "New York (CNN Business)", "(CNN)".
_TAG_RE = re.compile(rf"(?:[A-Z][\w.'’-]*(?:[ ,]+[A-Z0-9][\w.'’-]*){{0,5}}\s*)?\({_SOURCES}\)"
                     r"(?:\s*[-–—]+)?\s+")
# "CNN — …", "New York CNN Business — …": the tag without its parentheses.
_BARE_TAG_RE = re.compile(rf"(?:[A-Z][\w.'’-]*(?:,? [A-Z][\w.'’-]*){{0,3}} )?{_SOURCES}\s+[-–—]+\s+")
# "WASHINGTON –", "PANAMA CITY, Fla. —", "PORTSMOUTH, Dominica -": a capitalised place, a dash.
_DATELINE_RE = re.compile(r"[A-Z][A-Z.'’ -]*[A-Z.](?:,(?: [A-Z][\w.'’]*){1,3})?\s+[-–—]{1,2}\s+")
# A whole line that is only a place: "GRASS VALLEY, Calif." (the story follows on the next line).
_PLACE_LINE_RE = re.compile(r"[A-Z][A-Z.'’ -]+(?:,(?: [A-Z][\w.'’]*){1,3})?")
_BYLINE_RE = re.compile(r"(?:by|story by|photos? by|written by|reporting by)\s+[A-Z]", re.IGNORECASE)
_EMAIL_RE = re.compile(r"\S+@\S+\.\w+")
# Getty-style caption: "SCHWEDT, GERMANY - MAY 03: In this aerial view …".
_CAPTION_RE = re.compile(rf"[A-Z][A-Z.,' -]+ [-–—] {_MONTH} \d{{1,2}}:", re.IGNORECASE)
# A caption led by its photo credit: "Jane Doe/AFP/Getty Images A man walks …".
_CREDIT_RE = re.compile(r"(?:[A-Z][\w.'’-]*(?: [A-Z][\w.'’-]*)*/)+(?:Getty Images|AP|AFP|Reuters|EPA"
                        r"|Shutterstock|Bloomberg|NurPhoto|Sipa|ZUMA|Imagn|SOPA Images|LightRocket)\b")
_PROMO_RE = re.compile(
    r"\bsign(?:ed)? up (?:here|now|today)\b"
    r"|\bsign up for (?:free )?(?:here|our\b|cnn|the\b[^.]{0,40}newsletter)"
    r"|newsletter\b.{0,80}\bsign(?:ed)? up|\bsign(?:ed)? up\b.{0,60}\bnewsletter"
    r"|corrections? (?:&|and) clarifications"
    r"|\bsubscri(?:be|ber|ption)\b.{0,60}\b(?:newsletter|here|inbox)|in your inbox"
    r"|(?:story|article) (?:first )?appeared in|a version of this (?:story|article)"
    r"|weekly edition of|independently chosen|earn us a commission|editor['’]?s note"
    r"|this (?:story|article) (?:has been|was) updated|provided for free as a public service"
    r"|^in this (?:[\w-]+ )?(?:photo|image|picture)\b"
    r"|(?:download|get) (?:the|our) app|follow us on|all rights reserved|©|\(c\) \d{4}"
    r"|\(photo(?: by| credit)?[^)]*\)\s*$",
    re.IGNORECASE,
)
# Words a credit line is made of besides names: "From USA TODAY Network and wire reports".
_CREDIT_WORDS = frozenset(
    "and of the to for from a an with by in at staff reports report wire news services service "
    "network special contributor contributing writer correspondent division bureau | & -".split()
)
_ORG_END = re.compile(r"(?:Administration|Agency|Associated Press|Bureau|Department|Images|Journal|"
                      r"Magazine|Network|News|Post|Press|Service|Services|Sports|Street|Times|"
                      r"TODAY|Today|Tribune|\.com|Wire|ProPublica|Reuters|AP|AFP|CNN)$")
_DANGLING = frozenset(
    "a an the of to for in on at by from with and or but as that than into its their his her".split())
_NAME = r"[A-Z][\w'’-]*\.?(?: (?:[A-Z][\w'’-]*\.?|de|da|van|von|del|la|le|bin|al)){0,3}"
# "Stan Choe and Alex Veiga", "Jane Doe, John Roe and Ann Poe", "Kevin McCoy, USA TODAY".
_NAMES_RE = re.compile(rf"{_NAME}(?:(?:,| and|, and) {_NAME})+")


def headline(text: str, body_start: int = 0) -> str:
    """The article's title (at most LIMIT characters); never empty when the text has words."""
    lines = _lines(text[body_start:])
    first_real = next((i for i, line in enumerate(lines) if not is_boilerplate_line(line)), None)
    if first_real is not None and first_real < _SCAN_LINES:
        line = lines[first_real]
        if _reads_as_headline(line, lines[first_real + 1 :]):
            return shorten(line)
    real = [s for line in lines[:_SCAN_LINES] if not is_boilerplate_line(line)
            for s in map(strip_tags, _sentences(line)) if not is_boilerplate_sentence(s)]
    # A one- or two-word opener ("Relentless.", a section name) says little: prefer a sentence.
    best = next((s for s in real if len(s.split()) >= 3), real[0] if real else None)
    if best:
        return shorten(best)
    fallback = " ".join(text[body_start:].split()) or " ".join(text.split())
    return shorten(strip_tags(fallback) or fallback)


def shorten(title: str, limit: int = LIMIT) -> str:
    """`title` on one line, cut on a word boundary with "…" when longer than `limit`."""
    title = " ".join(title.split())
    if len(title) <= limit:
        return title
    cut = title[: limit - 1]
    space = cut.rfind(" ")
    if space > limit // 2:  # a word boundary that keeps most of the text; else cut mid-word
        cut = cut[:space]
    words = cut.rstrip(" ,;:-–—").split(" ")
    while len(words) > 3 and words[-1].lower() in _DANGLING:  # "… after the…" reads cut off
        words.pop()
    return " ".join(words).rstrip(" ,;:-–—") + "…"


def strip_tags(sentence: str) -> str:
    """The sentence without the stamp, dateline or "(CNN)"-style source tag in front of it."""
    previous = None
    while previous != sentence:
        previous = sentence
        for pattern in (_STAMP_RE, _TAG_RE, _BARE_TAG_RE, _DATELINE_RE):
            m = pattern.match(sentence)
            if m and m.end() < len(sentence):
                sentence = sentence[m.end() :].lstrip()
    return sentence


def is_boilerplate_line(line: str) -> bool:
    """True for a line that is no part of the story: byline, credit, stamp, caption, promo."""
    bare = line.strip(" \t—–-•*")
    if not bare:
        return True
    if _STAMP_RE.fullmatch(bare) or _CAPTION_RE.match(bare) or _CREDIT_RE.match(bare):
        return True
    if _PLACE_LINE_RE.fullmatch(bare) and len(bare) < 40:
        return True
    if len(bare) <= 160 and not bare.endswith((".", "?", "!")) and _is_credit(bare):
        return True
    return is_boilerplate_sentence(bare)


def is_boilerplate_sentence(sentence: str) -> bool:
    """True for a sentence that promotes, credits or stamps rather than tells the story."""
    s = sentence.strip()
    if not s:
        return True
    if _STAMP_RE.fullmatch(s) or _PROMO_RE.search(s):
        return True
    if _BYLINE_RE.match(s) and len(s) < 120 and _is_credit(re.sub(r"^\S+(?: by)?\s+", "", s)):
        return True
    return bool(_EMAIL_RE.search(s) and len(s) < 100)


def _is_credit(line: str) -> bool:
    """A byline or credit: names, outlets and credit words only, no prose."""
    words = [w.strip("()[]\"'“”‘’:;") for w in re.split(r"[\s,]+", line)]
    if any(w[:1].islower() and w.lower() not in _CREDIT_WORDS and "." not in w for w in words):
        return False  # a lower-case word that is no credit word (nor a web address): prose
    if _BYLINE_RE.match(line) or line.lower().startswith(("from ", "special to ", "special for ")):
        return True
    # Only capitalised words: a list of names, or something ending in an outlet's name.
    # A Title Case headline passes neither ("Biden Signs Climate Bill": no "and", no outlet).
    return bool(_NAMES_RE.fullmatch(line) or _ORG_END.search(line.rstrip(").'\"")) or " | " in line)


def _reads_as_headline(line: str, rest: list[str]) -> bool:
    """A short first line set apart from the story: a headline, not the first sentence of prose."""
    if not rest or len(line) > LIMIT or len(line.split()) < 3:
        return False
    if line.endswith(".") and not line.endswith("..."):
        return False  # prose ends with a period; headlines don't
    return strip_tags(line) == line and not is_boilerplate_sentence(line)


def _lines(body: str) -> list[str]:
    """Non-blank lines, white space collapsed, %-escapes of scraped text decoded."""
    out = []
    for raw in body.splitlines():
        line = " ".join(raw.split())
        if re.search(r"%(?:2[0-9A-F]|3[A-F]|5[BD]|7[BD])", line):
            line = unquote(line)
        if line:
            out.append(line)
    return out


def _sentences(line: str) -> list[str]:
    return [line[s:e] for s, e in split_sentences(line)]
