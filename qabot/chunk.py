"""Pure text → span functions: sentences, and sentence-aware passages that fit the model window.

Every span is a (start, end) pair of character offsets into the original file text, so a
citation can quote the exact source. Nothing here does I/O; token counts come from a callable.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

Span = tuple[int, int]
CountTokens = Callable[[Sequence[str]], list[int]]

# Bump when the splitting rules change: the manifest records it, so old indexes get rebuilt.
# 2: passages are capped in characters too, and over-long runs are hard-split to fit; offsets
#    in a file with a UTF-8 BOM count the BOM (corpus.py), so those passages move by one.
# 3: plural titles and the ranks news lists of service members use ("Sens.", "Reps.", "Lance
#    Cpl.") and an abbreviation after a hyphen ("Minneapolis-St. Paul") no longer end a sentence.
SPLITTER_VERSION = 3
# Word pieces a model adds around every input ([CLS] ... [SEP] for BERT-style models).
SPECIAL_TOKENS = 2
# Passages are capped in characters as well as tokens, because a token count does not bound the
# length: WordPiece turns any "word" over 100 characters into a single [UNK], so 5 MB without a
# space counts as one token. English runs ~4-5 characters a word piece, so ordinary text never
# reaches 16 a token; only such runs are cut by it.
CHARS_PER_TOKEN = 16

_END_RE = re.compile(r"[.!?]+[\"'”’)\]]*(?=\s)")
_ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof st jr sr gen gov sen rep lt col capt sgt maj cmdr adm rev hon pres "
    "sens reps gens govs sgts cpl pvt spc pfc supt "
    "vs etc inc ltd co corp no nos fig al approx dept est jan feb mar apr jun jul aug sep sept "
    "oct nov dec mt ft ave blvd".split()
)
# Abbreviations only before a number ("No. 5", "Fig. 2"): "they voted no. A" ends a sentence.
_BEFORE_NUMBERS = frozenset({"no", "nos", "fig"})


def split_sentences(text: str, start: int = 0, end: int | None = None) -> list[Span]:
    """Sentence spans in text[start:end]: trimmed of white space, never crossing a line break."""
    end = len(text) if end is None else end
    spans: list[Span] = []
    for line_start, line_end in _lines(text, start, end):
        s = line_start
        for m in _END_RE.finditer(text, line_start, line_end):
            nxt = _skip_space(text, m.end(), line_end)
            if nxt >= line_end or not _starts_sentence(text[nxt]):
                continue
            if _is_abbreviation(text, s, m.start(), m.group(), text[nxt]):
                continue
            spans.append((s, m.end()))
            s = nxt
        spans.append((s, line_end))
    return spans


def first_sentence(text: str, start: int = 0, limit: int = 200) -> str:
    """The first sentence after `start`, shortened to `limit` characters: the title before
    headline.py, kept as the baseline benchmarks/headlines.py compares titles with."""
    spans = split_sentences(text, start)
    if not spans:
        return ""
    s, e = spans[0]
    title = " ".join(text[s:e].split())
    return title if len(title) <= limit else title[: limit - 1].rstrip() + "…"


def chunk_text(
    text: str,
    start: int,
    count_tokens: CountTokens,
    max_tokens: int,
    overlap_tokens: int,
    max_chars: int | None = None,
) -> list[Span]:
    """Pack whole sentences of text[start:] into passages of at most `max_tokens` word pieces
    and `max_chars` characters (default max_tokens x CHARS_PER_TOKEN).

    Consecutive passages share trailing sentences worth up to `overlap_tokens`, so an answer that
    straddles a boundary is still found whole. A sentence over either limit is cut at white
    space, and a run without white space over it between characters (the model would otherwise
    silently truncate it, and one passage could hold a whole file).
    """
    budget = max_tokens - SPECIAL_TOKENS
    cap = max_tokens * CHARS_PER_TOKEN if max_chars is None else max_chars
    sentences = split_sentences(text, start)
    counts = count_tokens([text[s:e] for s, e in sentences])
    units: list[Span] = []
    unit_counts: list[int] = []
    for span, n in zip(sentences, counts, strict=True):
        if n <= budget and span[1] - span[0] <= cap:
            units.append(span)
            unit_counts.append(n)
        else:
            for piece, m in _split_long(text, span, count_tokens, budget, cap):
                units.append(piece)
                unit_counts.append(m)
    ranges = pack(unit_counts, budget, overlap_tokens, units, cap)
    return [(units[i][0], units[j - 1][1]) for i, j in ranges]


def pack(
    counts: Sequence[int],
    budget: int,
    overlap: int,
    spans: Sequence[Span] | None = None,
    max_chars: int | None = None,
) -> list[tuple[int, int]]:
    """Greedy packing of units with these token counts into [i, j) ranges within `budget`
    (and, given the units' spans, within `max_chars` from the first unit's start to the last's end).

    Each range after the first starts with the previous range's trailing units worth at most
    `overlap` tokens, but always at least one unit later than the previous start (progress).
    """

    def fits(i: int, j: int, total: int) -> bool:
        if total + counts[j] > budget:
            return False
        return spans is None or max_chars is None or spans[j][1] - spans[i][0] <= max_chars

    ranges: list[tuple[int, int]] = []
    i, n = 0, len(counts)
    while i < n:
        j, total = i, 0
        while j < n and fits(i, j, total):
            total += counts[j]
            j += 1
        j = max(j, i + 1)  # a unit over budget still goes out alone rather than looping forever
        ranges.append((i, j))
        if j >= n:
            break
        k, shared = j, 0
        while k - 1 > i and shared + counts[k - 1] <= overlap:
            k -= 1
            shared += counts[k]
        i = k
    return ranges


def _split_long(
    text: str, span: Span, count_tokens: CountTokens, budget: int, cap: int
) -> list[tuple[Span, int]]:
    """Cut one overlong sentence into pieces of at most `budget` tokens and `cap` characters:
    at white space, and a word that alone is over either limit between characters."""
    words = [(span[0] + m.start(), span[0] + m.end())
             for m in re.finditer(r"\S+", text[span[0] : span[1]])]
    counts = count_tokens([text[s:e] for s, e in words])
    pieces: list[tuple[Span, int]] = []
    for (s, e), n in zip(words, counts, strict=True):
        if n > budget or e - s > cap:  # a URL, a table row, a 5 MB run of one character
            # Its pieces are never merged with each other: joined without a space, two pieces
            # may tokenize to more than the sum of their counts.
            pieces += _cut(text, s, e, count_tokens, budget, cap)
        elif pieces and pieces[-1][1] + n <= budget and e - pieces[-1][0][0] <= cap:
            (ps, _), pn = pieces[-1]
            pieces[-1] = ((ps, e), pn + n)  # white space between: the counts add up exactly
        else:
            pieces.append(((s, e), n))
    return pieces


def _cut(
    text: str, s: int, e: int, count_tokens: CountTokens, budget: int, step: int
) -> list[tuple[Span, int]]:
    """text[s:e] cut between characters into pieces of at most `step` characters that each
    count at most `budget` tokens (a piece over budget is cut again, finer)."""
    cuts = [(a, min(e, a + step)) for a in range(s, e, step)]
    out: list[tuple[Span, int]] = []
    for (a, b), m in zip(cuts, count_tokens([text[a:b] for a, b in cuts]), strict=True):
        if m <= budget or b - a == 1:  # one character is as fine as a cut gets
            out.append(((a, b), m))
        else:
            finer = max(1, min((b - a) // 2, (b - a) * budget // m))
            out += _cut(text, a, b, count_tokens, budget, finer)
    return out


def _lines(text: str, start: int, end: int) -> list[Span]:
    """Non-blank lines in text[start:end], trimmed of surrounding white space."""
    out: list[Span] = []
    for m in re.finditer(r"[^\n]+", text[start:end]):
        s, e = start + m.start(), start + m.end()
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if s < e:
            out.append((s, e))
    return out


def _skip_space(text: str, i: int, end: int) -> int:
    while i < end and text[i].isspace():
        i += 1
    return i


def _starts_sentence(ch: str) -> bool:
    return ch.isupper() or ch.isdigit() or ch in "\"'“‘([«"


def _is_abbreviation(text: str, sent_start: int, dot: int, punct: str, after: str) -> bool:
    """True when the '.' at `dot` ends an abbreviation or an initial, not a sentence (`after`:
    the character that would start the next one)."""
    if not punct.startswith(".") or punct.startswith(".."):
        return False
    w = dot
    while w > sent_start and not text[w - 1].isspace():
        w -= 1
    word = text[w:dot].lstrip("\"'“‘([")
    if not word:
        return False
    if len(word) == 1 and word.isalpha():
        return True  # an initial: "J. Smith"
    last = word.rsplit("-", 1)[-1].lower()  # "Minneapolis-St.", "then-Gov."
    if last in _BEFORE_NUMBERS:
        return after.isdigit()
    return "." in word or last in _ABBREVIATIONS  # "U.S.", "e.g.", "Mr."
