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
SPLITTER_VERSION = 1
# Word pieces a model adds around every input ([CLS] ... [SEP] for BERT-style models).
SPECIAL_TOKENS = 2

_END_RE = re.compile(r"[.!?]+[\"'”’)\]]*(?=\s)")
_ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof st jr sr gen gov sen rep lt col capt sgt maj cmdr adm rev hon pres "
    "vs etc inc ltd co corp no nos fig al approx dept est jan feb mar apr jun jul aug sep sept "
    "oct nov dec mt ft ave blvd".split()
)


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
            if _is_abbreviation(text, s, m.start(), m.group()):
                continue
            spans.append((s, m.end()))
            s = nxt
        spans.append((s, line_end))
    return spans


def first_sentence(text: str, start: int = 0, limit: int = 200) -> str:
    """The first sentence after `start`, shortened to `limit` characters (used as the title)."""
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
) -> list[Span]:
    """Pack whole sentences of text[start:] into passages of at most `max_tokens` word pieces.

    Consecutive passages share trailing sentences worth up to `overlap_tokens`, so an answer that
    straddles a boundary is still found whole. A sentence longer than the window is cut at word
    boundaries (it would otherwise be silently truncated by the model).
    """
    budget = max_tokens - SPECIAL_TOKENS
    sentences = split_sentences(text, start)
    counts = count_tokens([text[s:e] for s, e in sentences])
    units: list[Span] = []
    unit_counts: list[int] = []
    for span, n in zip(sentences, counts, strict=True):
        if n <= budget:
            units.append(span)
            unit_counts.append(n)
        else:
            for piece, m in _split_long(text, span, count_tokens, budget):
                units.append(piece)
                unit_counts.append(m)
    return [(units[i][0], units[j - 1][1]) for i, j in pack(unit_counts, budget, overlap_tokens)]


def pack(counts: Sequence[int], budget: int, overlap: int) -> list[tuple[int, int]]:
    """Greedy packing of units with these token counts into [i, j) ranges within `budget`.

    Each range after the first starts with the previous range's trailing units worth at most
    `overlap` tokens, but always at least one unit later than the previous start (progress).
    """
    ranges: list[tuple[int, int]] = []
    i, n = 0, len(counts)
    while i < n:
        j, total = i, 0
        while j < n and total + counts[j] <= budget:
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
    text: str, span: Span, count_tokens: CountTokens, budget: int
) -> list[tuple[Span, int]]:
    """Cut one overlong sentence at word boundaries into pieces of at most `budget` tokens."""
    words = [(m.start(), m.end()) for m in re.finditer(r"\S+", text[span[0] : span[1]])]
    words = [(span[0] + s, span[0] + e) for s, e in words]
    counts = count_tokens([text[s:e] for s, e in words])
    pieces: list[tuple[Span, int]] = []
    for (s, e), n in zip(words, counts, strict=True):
        if n > budget:  # one "word" over the window (a URL, a table row): cut it by characters
            step = max(1, (e - s) * budget // (2 * n))
            for cs in range(s, e, step):
                ce = min(e, cs + step)
                pieces.append(((cs, ce), count_tokens([text[cs:ce]])[0]))
            continue
        if pieces and pieces[-1][1] + n <= budget and pieces[-1][0][1] <= s:
            (ps, _), pn = pieces[-1]
            pieces[-1] = ((ps, e), pn + n)
        else:
            pieces.append(((s, e), n))
    return pieces


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


def _is_abbreviation(text: str, sent_start: int, dot: int, punct: str) -> bool:
    """True when the '.' at `dot` ends an abbreviation or an initial, not a sentence."""
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
    return "." in word or word.lower() in _ABBREVIATIONS  # "U.S.", "e.g.", "Mr."
