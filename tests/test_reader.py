"""reader.open_index: what every front end calls to get an index it can answer from."""

from __future__ import annotations

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
