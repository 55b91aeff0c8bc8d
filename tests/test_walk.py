"""The ranking walk on hand-made rows: the per-article cap, a repeated story folded into one
result, and the newer copy shown when it scores within the margin."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np

from qabot import walk
from qabot.config import SearchOptions

D = dt.date.fromisoformat
NO_RECENCY = SearchOptions(recency_margin=0.0)


@dataclass
class Rows:
    """A walk.Stories over three articles: 0 and 1 tell one story, 2 another."""

    doc: np.ndarray = field(default_factory=lambda: np.array([0, 0, 1, 2, 2]))
    dates: dict[int, dt.date | None] = field(
        default_factory=lambda: {0: D("2024-01-01"), 1: D("2024-02-01"), 2: None})

    def date(self, num: int) -> dt.date | None:
        return self.dates[num]

    def same_story(self, doc: int, other: int, threshold: float, contained: float) -> bool:
        return {doc, other} == {0, 1}


def test_a_repeated_story_is_one_result_listing_its_copy() -> None:
    scores = np.array([0.9, 0.8, 0.5, 0.7, 0.6], dtype=np.float32)
    hits = walk.pick(Rows(), np.arange(5), scores, k=5, per_article=1, tuning=NO_RECENCY,
                     relevance=scores)
    assert [(h.row, h.docs) for h in hits] == [(0, [0, 1]), (3, [2])]


def test_the_newer_copy_takes_the_place_when_within_the_margin() -> None:
    scores = np.array([0.9, 0.8, 0.89, 0.7, 0.6], dtype=np.float32)
    hits = walk.pick(Rows(), np.arange(5), scores, k=1, per_article=1,
                     tuning=SearchOptions(recency_margin=0.02), relevance=scores)
    assert (hits[0].row, hits[0].docs) == (2, [1, 0])  # article 1 is a month newer


def test_the_cap_allows_more_passages_of_an_article_and_next_best_finds_the_rest() -> None:
    scores = np.array([0.9, 0.8, -np.inf, 0.7, 0.6], dtype=np.float32)
    rows = np.arange(5)
    hits = walk.pick(Rows(), rows, scores, k=5, per_article=2, tuning=NO_RECENCY, relevance=scores)
    assert [h.row for h in hits] == [0, 1, 3, 4]
    extra = walk.next_best(Rows(), rows, scores, scores, hits[2], 3)
    assert [h.row for h in extra] == [4]
