"""Article-level ranking on dated news (issue 12): freshness, headline and lead, cut-down copies.

The fixtures in tests/fixtures/news/ are short invented articles, indexed with the real model;
each test shows a lever's effect by asking once with it off and once with the defaults.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
from pathlib import Path

import pytest

from qabot.config import PathSettings, SearchOptions, Settings, VectorSettings
from qabot.indexer import run_index
from qabot.passage import Passage
from qabot.reader import Retriever
from qabot.retrieve import search
from tests.conftest import indexed

FIXTURE = Path(__file__).parent / "fixtures" / "news"
D = dt.date.fromisoformat
LIBRARY = "What happened to the Maple Street library in Riverton?"
LIGHTHOUSE = "When was the Cape Morrow lighthouse relit?"
FROST = "How much of the Hallam Valley apple crop did the frost destroy?"
DEFAULTS = Settings().search


def quiet(msg: str) -> None:
    pass


def docs(passages: list[Passage]) -> list[str]:
    return [p.doc_id.removesuffix(".txt") for p in passages]


@pytest.fixture(scope="module")
def retriever(tmp_path_factory: pytest.TempPathFactory, encoder_cache: Path) -> Retriever:
    root = tmp_path_factory.mktemp("news")
    shutil.copytree(FIXTURE, root / "seeds")
    return Retriever(indexed(root / "seeds", encoder_cache).index)


def test_the_defaults_turn_the_issue_12_levers_on() -> None:
    assert DEFAULTS.recency_weight > 0 and DEFAULTS.lead_weight > 0
    assert DEFAULTS.duplicate_containment <= 1


def test_a_fresh_article_on_the_story_beats_an_older_closer_match(retriever: Retriever) -> None:
    no_prior = dataclasses.replace(DEFAULTS, recency_weight=0.0)
    stale = search(retriever, LIBRARY, dataclasses.replace(no_prior, k=2), floor=False, as_of=D("2024-06-08"),
                   answers=False)
    assert docs(stale) == ["library_vote", "library_closed"]  # April's words match better
    assert stale[0].score - stale[1].score >= DEFAULTS.recency_margin  # beyond the near-tie rule
    fresh = search(retriever, LIBRARY, dataclasses.replace(DEFAULTS, k=2), floor=False, as_of=D("2024-06-08"),
                   answers=False)
    assert docs(fresh) == ["library_closed", "library_vote"]
    # Asked back in April, the vote is the news (the closure isn't out yet).
    assert docs(
        search(retriever, LIBRARY, dataclasses.replace(DEFAULTS, k=1), floor=False, as_of=D("2024-04-03"))
    ) == ["library_vote"]


def test_an_article_about_it_beats_a_passing_mention(retriever: Retriever) -> None:
    def first(tuning: SearchOptions) -> str:
        return docs(
            search(retriever, LIGHTHOUSE, dataclasses.replace(tuning, k=2), floor=False,
                   as_of=D("2024-06-01"), answers=False)
        )[0]

    passage_only = dataclasses.replace(DEFAULTS, lead_weight=0.0, second_share=0.0)
    assert first(passage_only) == "coastal_summer"  # one sentence in a tourism round-up, and newer
    assert first(dataclasses.replace(DEFAULTS, second_share=0.0)) == "lighthouse"  # the lead alone
    assert first(dataclasses.replace(DEFAULTS, lead_weight=0.0)) == "lighthouse"  # its 2nd passage
    assert first(DEFAULTS) == "lighthouse"


def test_a_truncated_copy_folds_into_its_original(retriever: Retriever) -> None:
    jaccard_only = dataclasses.replace(DEFAULTS, duplicate_containment=1.01)
    apart = search(retriever, FROST, dataclasses.replace(jaccard_only, k=3), floor=False,
                   as_of=D("2024-04-20"), answers=False)
    assert {"orchard_frost", "orchard_frost_brief"} <= set(docs(apart))  # Jaccard alone: two stories
    hits = search(retriever, FROST, dataclasses.replace(DEFAULTS, k=3), floor=False, as_of=D("2024-04-20"),
                  answers=False)
    story = [p for p in hits if p.doc_id.startswith("orchard_frost")]
    assert len(story) == 1
    assert {story[0].doc_id, *(s.doc_id for s in story[0].duplicates)} == {
        "orchard_frost.txt",
        "orchard_frost_brief.txt",
    }
    # The two other stories share no long run of words with either: they stay apart.
    assert (
        len(set(docs(search(retriever, LIBRARY, dataclasses.replace(DEFAULTS, k=6), floor=False)))) == 6 - 1
    )


def test_freshness_never_turns_an_off_topic_question_into_an_answer(retriever: Retriever) -> None:
    floor = Settings().search.min_score
    question = "What is the capital of Australia?"
    # Asked the day the newest fixture came out, every article gains up to the full prior...
    (top,) = search(retriever, question, dataclasses.replace(DEFAULTS, k=1), floor=False,
                    as_of=D("2024-06-05"), answers=False)
    assert top.score >= floor > top.score - DEFAULTS.recency_weight
    # ...but the floor looks at how well the passage itself matches: still no confident answer.
    assert (
        search(retriever, question, dataclasses.replace(DEFAULTS, min_score=floor), as_of=D("2024-06-05"))
        == []
    )


def test_an_approximate_index_ranks_the_same_with_the_levers(retriever: Retriever, tmp_path: Path) -> None:
    # A compressed index scores candidates only: the leads of their articles are fetched too.
    seeds, index = retriever.index_dir.parent / "seeds", tmp_path / "sq8"
    shutil.copytree(retriever.index_dir, index)
    run_index(Settings(paths=PathSettings(seeds=seeds, index=index), vectors=VectorSettings(codec="sq8")),
              log=quiet)
    approx = Retriever(index)
    assert not approx.tables(approx.snapshot()).exhaustive
    for question, day in ((LIGHTHOUSE, "2024-06-01"), (LIBRARY, "2024-06-08"), (FROST, "2024-04-20")):
        want = search(retriever, question, SearchOptions(k=3), floor=False, as_of=D(day), answers=False)
        got = search(approx, question, SearchOptions(k=3), floor=False, as_of=D(day), answers=False)
        assert docs(got) == docs(want), question
        assert [p.score for p in got] == pytest.approx([p.score for p in want], abs=0.01)
