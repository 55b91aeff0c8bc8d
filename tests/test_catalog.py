"""The catalog: articles and passages in SQLite, their count and date range, pages newest first."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from qabot import bot, store
from qabot.catalog import ArticleRecord, Catalog, CatalogSummary, Changes, PassageRecord, write
from qabot.corpus import read_corpus
from tests.conftest import FIXTURE_SEEDS
from tests.fakes import FakeEmbedder, fake_corpus, index


def catalog_of(tmp_path: Path, dates: dict[str, str | None]) -> Catalog:
    """A catalog written straight from these articles (doc id -> date), one passage each."""
    changes = Changes()
    for n, (doc, date) in enumerate(dates.items()):
        changes.articles.append((ArticleRecord(doc, f"h{n}", date, f"Title {doc}"),
                                 [PassageRecord(n, doc, 0, 4, "text")]))
    tmp_path.mkdir(exist_ok=True)
    path = tmp_path / "passages.sqlite"
    write(path, changes, None, 1)
    return Catalog(path)


def test_summary_of_an_indexed_fake_corpus(tmp_path: Path) -> None:
    settings = fake_corpus(tmp_path / "seeds")
    index(settings, FakeEmbedder())
    summary = store.load_snapshot(settings.index).catalog.summary()
    assert summary == CatalogSummary(3, dt.date(2024, 1, 1), dt.date(2024, 1, 3))


def test_summary_of_the_fixture_seeds_matches_the_corpus(tmp_path: Path) -> None:
    """Count and range as read from the seed files themselves, not restated by hand."""
    settings = fake_corpus(tmp_path / "unused").at(seeds=FIXTURE_SEEDS, index=tmp_path / "idx")
    index(settings, FakeEmbedder())
    articles, bad = read_corpus(FIXTURE_SEEDS)
    assert not bad
    dates = sorted(a.date for a in articles if a.date)
    summary = store.load_snapshot(settings.index).catalog.summary()
    assert summary.articles == len(articles) > 1 and len(set(dates)) > 1
    assert (summary.first, summary.last) == (dates[0], dates[-1])


def test_summary_counts_undated_articles_and_skips_them_in_the_range(tmp_path: Path) -> None:
    cat = catalog_of(tmp_path, {"a.txt": "2023-12-31", "b.txt": None, "c.txt": "2024-02-29",
                                "d.txt": "2024-01-15"})
    assert cat.summary() == CatalogSummary(4, dt.date(2023, 12, 31), dt.date(2024, 2, 29))


def test_summary_of_an_empty_or_undated_catalog(tmp_path: Path) -> None:
    assert catalog_of(tmp_path / "empty", {}).summary() == CatalogSummary(0, None, None)
    assert catalog_of(tmp_path / "undated", {"a.txt": None}).summary() == CatalogSummary(1, None, None)


def test_summary_after_a_commit_that_removes_and_adds(tmp_path: Path) -> None:
    """The summary reads the new generation: a removed article's date leaves the range."""
    settings = fake_corpus(tmp_path / "seeds")
    index(settings, FakeEmbedder())
    (settings.seeds / "0.txt").unlink()  # the 2024-01-01 story
    (settings.seeds / "9.txt").write_text(" date 2025-06-30 Story about tides. More on tides here.")
    index(settings, FakeEmbedder())
    summary = store.load_snapshot(settings.index).catalog.summary()
    assert summary == CatalogSummary(3, dt.date(2024, 1, 2), dt.date(2025, 6, 30))


def test_newest_pages_are_the_sorted_catalog_in_slices(tmp_path: Path) -> None:
    """Newest first, undated last, ties by doc id descending; the pages cover every article once."""
    dates = {"a.txt": "2024-01-02", "b.txt": None, "c.txt": "2024-01-02", "d.txt": "2023-05-01",
             "e.txt": "2024-03-09", "f.txt": None, "g.txt": "2022-11-30"}
    cat = catalog_of(tmp_path, dates)
    pages = [cat.newest(offset, 3) for offset in (0, 3, 6, 9)]
    assert [[a.doc_id for a in page] for page in pages] == [
        ["e.txt", "c.txt", "a.txt"], ["d.txt", "g.txt", "f.txt"], ["b.txt"], []]
    assert pages[0][0] == ArticleRecord("e.txt", "h4", "2024-03-09", "Title e.txt", (4,))


def test_bot_start_and_sources_do_not_read_every_article(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """/start and /sources ask SQLite for a count, a range and one page, never the whole list."""
    cat = catalog_of(tmp_path, {f"{n:02d}.txt": f"2024-01-{n:02d}" for n in range(1, 26)})

    def every_article(self: Catalog) -> list[ArticleRecord]:
        raise AssertionError("read every article")

    monkeypatch.setattr(Catalog, "articles", every_article)
    assert cat.summary() == CatalogSummary(25, dt.date(2024, 1, 1), dt.date(2024, 1, 25))
    text, at = bot.sources_text(cat, 2, 10)
    assert (at.page, at.pages) == (2, 3)
    assert "<b>25 indexed articles</b>, newest first (page 2 of 3)" in text
    assert "11. Title 15.txt\n<i>2024-01-15 · 15.txt</i>" in text and "More: /sources 3" in text
    empty, at = bot.sources_text(None, 4, 10)
    assert empty == "No articles are indexed yet." and (at.page, at.pages) == (1, 1)
