"""reader.open_index: what every front end calls to get an index it can answer from."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from qabot.config import PathSettings, Settings
from qabot.errors import SeedsNotFound
from qabot.reader import open_index
from qabot.retrieve import search
from tests.conftest import QUESTION


def test_open_index_builds_a_missing_index_from_the_seeds_once(real_settings: Settings) -> None:
    said: list[str] = []
    retriever = open_index(real_settings, log=said.append)
    assert said[0] == f"No index in {real_settings.index} yet; building it from {real_settings.seeds} first."
    assert said[-1].startswith("Indexed 5 articles")
    assert retriever.snapshot().manifest.article_count == 5
    assert search(retriever, QUESTION)[0].doc_id == "000_510ad1cb4fc50a43.txt"  # the shipped article
    said.clear()
    again = open_index(real_settings, log=said.append)  # an index is there: opened, not rebuilt
    assert said == [] and again.snapshot().manifest.generation == retriever.snapshot().manifest.generation


def test_open_index_without_index_or_seeds_says_what_to_point_at(tmp_path: Path) -> None:
    settings = Settings(paths=PathSettings(seeds=tmp_path / "nowhere", index=tmp_path / "idx"))
    with pytest.raises(SeedsNotFound, match="point --seeds / QABOT_SEEDS at your articles"):
        open_index(settings)
    assert not (tmp_path / "idx" / "manifest.json").exists()


def test_pinned_holds_one_generation_for_this_thread_while_a_commit_lands(real_settings: Settings) -> None:
    from qabot.indexer import run_index

    retriever = open_index(real_settings)
    question = "How many orange-bellied parrots returned to Melaleuca?"
    with retriever.pinned():
        held = retriever.snapshot()
        (real_settings.seeds / "parrots.txt").write_text(
            " date 2024-03-01 Rangers in Tasmania counted 412 orange-bellied parrots returning to "
            "Melaleuca this spring.\n", encoding="utf-8")
        run_index(real_settings, log=lambda msg: None)
        elsewhere: list[int] = []
        other = threading.Thread(target=lambda: elsewhere.append(retriever.snapshot().manifest.generation))
        other.start()
        other.join()

        assert retriever.snapshot() is held
        assert "parrots.txt" not in [p.doc_id for p in search(retriever, question, floor=False)]
        with retriever.pinned():  # a nested block keeps the outer one's
            assert retriever.snapshot() is held
        assert elsewhere == [held.manifest.generation + 1]  # other threads see the commit
    assert retriever.snapshot().manifest.generation == held.manifest.generation + 1
    assert search(retriever, question)[0].doc_id == "parrots.txt"


def test_a_question_is_encoded_once_while_remembered() -> None:
    from qabot.reader import QuestionVectors
    from tests.fakes import FakeEmbedder

    fake, cache = FakeEmbedder(), QuestionVectors()
    first = cache.get("enc-a", "who won the cup", fake)
    assert cache.get("enc-a", "who won the cup", fake) is first and fake.embedded == ["who won the cup"]
    cache.get("enc-b", "who won the cup", fake)  # another encoder: its own vector
    assert len(fake.embedded) == 2
    for i in range(QuestionVectors.SIZE):  # the oldest are forgotten past SIZE
        cache.get("enc-a", f"question {i}", fake)
    cache.get("enc-a", "who won the cup", fake)
    assert fake.embedded.count("who won the cup") == 3
    assert not first.flags.writeable  # shared by every caller
