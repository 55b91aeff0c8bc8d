"""The result types a search returns and every formatter takes: `Passage` and its `Source`s.

Apart from the query stack (no FAISS, no store, no model) so formatters, the bot's handlers
and tests can build and read results without loading an index's machinery.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class Source:
    """Another article carrying the same story (near-identical text): syndicated or re-published."""

    doc_id: str
    path: str
    date: dt.date | None
    title: str


@dataclass(frozen=True)
class Passage:
    """One answer: the passage text, its score, and everything a citation needs."""

    rank: int
    score: float
    text: str
    doc_id: str
    path: str
    date: dt.date | None
    title: str
    start: int  # character offsets of the passage in the article file
    end: int
    answer_start: int  # the sentence that best answers the question, offsets in the file
    answer_end: int
    duplicates: tuple[Source, ...] = ()  # the other articles with near-identical text
    # The passage's own match (what the confidence floor judges), before article evidence and
    # freshness were added to make `score`.
    relevance: float = 0.0
    # The article's next best passages for the question (search(more=n)), best first, with the
    # same rank; their answer span is the whole passage.
    more: tuple[Passage, ...] = ()
    # Inside the answering sentence, the words that answer the kind of thing asked (a date for
    # "when", a number for "how many", a name for "who"), offsets in the file; equal: none.
    phrase_start: int = 0
    phrase_end: int = 0
    id: int = -1  # the passage's id in the index (its stored sentence vectors are found by it)

    @property
    def answer(self) -> str:
        """The best-answering sentence itself."""
        return self.text[self.answer_start - self.start : self.answer_end - self.start]

    @property
    def phrase(self) -> str:
        """The answering phrase itself ("" when none is marked)."""
        return self.text[self.phrase_start - self.start : self.phrase_end - self.start]
