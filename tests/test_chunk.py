"""Sentence splitting and chunking: exact cases, then properties over arbitrary text."""

from __future__ import annotations

import re
from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from qabot.chunk import CHARS_PER_TOKEN, SPECIAL_TOKENS, chunk_text, first_sentence, pack, split_sentences


def words(texts: Sequence[str]) -> list[int]:
    """A stand-in token counter: one token per word or punctuation mark."""
    return [len(re.findall(r"\w+|[^\w\s]", t)) for t in texts]


def sentences(text: str) -> list[str]:
    return [text[s:e] for s, e in split_sentences(text)]


def test_splits_on_terminal_punctuation_and_line_breaks() -> None:
    text = "First one. Second one? Third!\nNew paragraph without stop\n\n  Last one.  "
    assert sentences(text) == [
        "First one.", "Second one?", "Third!", "New paragraph without stop", "Last one."
    ]


def test_abbreviations_initials_and_decimals_do_not_end_sentences() -> None:
    text = "Mr. Smith met J. Doe in the U.S. on Monday. Rates rose 4.5 percent. Done."
    assert sentences(text) == [
        "Mr. Smith met J. Doe in the U.S. on Monday.", "Rates rose 4.5 percent.", "Done."
    ]


def test_plural_titles_ranks_and_hyphenated_abbreviations_do_not_end_sentences() -> None:
    # As news writes them: a resolution naming "GOP Reps.", a casualty list ("Lance Cpl."), a
    # hospital in "Minneapolis-St. Paul". Splitter 2 cut each of these sentences in two.
    text = ("It censured GOP Reps. Liz Cheney and Adam Kinzinger. Marine Corps Lance Cpl. Jo Doe, "
            "20, of Norco. Sens. Joe Manchin and Kyrsten Sinema voted no. A Minneapolis-St. Paul "
            "hospital opened. Then-Gov. Al Roe spoke.")
    assert sentences(text) == [
        "It censured GOP Reps. Liz Cheney and Adam Kinzinger.",
        "Marine Corps Lance Cpl. Jo Doe, 20, of Norco.",
        "Sens. Joe Manchin and Kyrsten Sinema voted no.", "A Minneapolis-St. Paul hospital opened.",
        "Then-Gov. Al Roe spoke.",
    ]


def test_quotes_stay_with_their_sentence() -> None:
    text = 'He said it was "illegitimate." "It was also stated," she added. lower case stays.'
    assert sentences(text) == [
        'He said it was "illegitimate."', '"It was also stated," she added. lower case stays.'
    ]


def test_first_sentence_is_the_title() -> None:
    assert first_sentence(" date 2023-08-03 Big news today. More here.", 16) == "Big news today."
    assert first_sentence("x" * 300).endswith("…")


def test_chunks_respect_the_token_budget_and_overlap() -> None:
    text = " ".join(f"Sentence number {i} has seven tokens." for i in range(20))
    spans = chunk_text(text, 0, words, max_tokens=20, overlap_tokens=8)
    assert all(words([text[s:e]])[0] <= 20 - SPECIAL_TOKENS for s, e in spans)
    assert len(spans) > 5
    # consecutive passages share exactly one 7-token sentence (8 tokens of overlap allowed)
    for (s1, e1), (s2, _) in zip(spans, spans[1:], strict=False):
        assert s1 < s2 < e1
        assert words([text[s2:e1]])[0] == 7


def test_overlong_sentence_is_cut_at_word_boundaries() -> None:
    text = "word " * 100 + "end."
    spans = chunk_text(text, 0, words, max_tokens=12, overlap_tokens=0)
    assert all(words([text[s:e]])[0] <= 10 for s, e in spans)
    assert all(text[s] != " " and (e == len(text) or text[e] == " ") for s, e in spans)
    assert sum(words([text[s:e]])[0] for s, e in spans) == 102


def test_a_run_without_spaces_is_cut_to_the_character_cap() -> None:
    """`words` counts a 1 MB run as one token, as WordPiece counts it as one [UNK]: the token
    budget alone would let it through as a single 1 MB passage."""
    text = "Title. " + "x" * 1_000_000 + " tail words. " + "y" * 50
    spans = chunk_text(text, 0, words, max_tokens=128, overlap_tokens=32)
    cap = 128 * CHARS_PER_TOKEN
    assert all(e - s <= cap for s, e in spans)
    assert "".join(text[s:e] for s, e in spans).count("x") >= 1_000_000  # nothing lost
    assert text[spans[-1][0]:spans[-1][1]].endswith("y" * 50)


def test_a_long_word_over_the_token_budget_is_cut_to_fit() -> None:
    text = "x" * 100 + "-" * 30  # one token, then 30 in a short stretch: tokens are not spread evenly
    spans = chunk_text(text, 0, words, max_tokens=12, overlap_tokens=0)
    assert all(words([text[s:e]])[0] <= 10 for s, e in spans)
    assert spans[0][0] == 0 and spans[-1][1] == 130


def test_pack_always_progresses() -> None:
    assert pack([5, 50, 5], budget=10, overlap=100) == [(0, 1), (1, 2), (2, 3)]
    assert pack([], budget=10, overlap=2) == []


_text = st.lists(
    st.one_of(
        st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40),
        st.sampled_from(["Mr. ", ". ", "! ", "?\n", "\n\n", "U.S. ", "A", " end.", '"Q." ']),
        # runs without a space, over any window: one token by `words`, like WordPiece's [UNK]
        st.builds(lambda c, n: c * n, st.sampled_from(["x", "é", "一", "x.", "-"]), st.integers(20, 300)),
    ),
    max_size=40,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(text=_text, start=st.integers(0, 5), max_tokens=st.integers(4, 60),
       overlap=st.integers(0, 20), max_chars=st.one_of(st.none(), st.integers(1, 120)))
def test_chunk_properties(text: str, start: int, max_tokens: int, overlap: int,
                          max_chars: int | None) -> None:
    start = min(start, len(text))
    overlap = min(overlap, max_tokens // 2)
    spans = chunk_text(text, start, words, max_tokens, overlap, max_chars)
    # inside the text, non-empty, ordered
    assert all(start <= s < e <= len(text) for s, e in spans)
    # within the model's window and the character cap, whatever the text
    assert all(n <= max_tokens - SPECIAL_TOKENS for n in words([text[s:e] for s, e in spans]))
    cap = max_tokens * CHARS_PER_TOKEN if max_chars is None else max_chars
    assert all(e - s <= cap for s, e in spans)
    assert [s for s, _ in spans] == sorted({s for s, _ in spans})
    assert [e for _, e in spans] == sorted(e for _, e in spans)
    # every sentence is covered by the union of the passages
    for s, e in split_sentences(text, start):
        covered = sorted((max(s, a), min(e, b)) for a, b in spans if a < e and b > s)
        pos = s
        for a, b in covered:
            assert a <= pos or text[pos:a].isspace()
            pos = max(pos, b)
        assert pos >= e
    # deterministic
    assert chunk_text(text, start, words, max_tokens, overlap, max_chars) == spans


@settings(max_examples=200, deadline=None)
@given(text=_text)
def test_sentence_spans_are_trimmed_ordered_and_cover_all_words(text: str) -> None:
    spans = split_sentences(text)
    assert all(0 <= s < e <= len(text) for s, e in spans)
    assert all(not text[s].isspace() and not text[e - 1].isspace() for s, e in spans)
    assert all(e1 <= s2 for (_, e1), (s2, _) in zip(spans, spans[1:], strict=False))
    outside = "".join(text[a:b] for a, b in zip([0] + [e for _, e in spans],
                                                 [s for s, _ in spans] + [len(text)], strict=True))
    assert outside.strip() == ""
