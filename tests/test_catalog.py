"""The catalog: articles and passages in SQLite, their count and date range, pages newest first."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from qabot import bot, store
from qabot.catalog import (
    ArticleRecord,
    Articles,
    Catalog,
    CatalogSummary,
    Changes,
    Deleted,
    PassageRecord,
    Passages,
    Rows,
    Stack,
    deleting,
    read_deleted,
    write,
    write_deleted,
    write_segment,
)
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
    """/start and /sources on what the bot is given, a Stack of segments with deletions: SQLite
    hands back a count, a range and one page's worth of rows, never the whole list, by any route
    (articles(), a newest() of everything sliced, ...)."""
    ids = Ids()
    stack = Stack((), (), Deleted.empty())
    parts: list[Catalog] = []
    rows: list[Rows] = []
    start = 1
    for k in range(3):  # 100 articles a day apart each time, and 20 of the last commit's again, undated
        day = dt.date(2023, 1, 1) + dt.timedelta(days=100 * k)
        news = [ids.article(f"{k}-{n:03d}.txt", (day + dt.timedelta(days=n)).isoformat(), passages=1)
                for n in range(100)]
        again = [ids.article(f"{k - 1}-{n:03d}.txt", None, "2", passages=1) for n in range(20)] if k else []
        changes = Changes(articles=news + again)
        deleted = deleting(stack, [a.doc_id for a, _ in changes.articles])
        part_rows, count = write_segment(tmp_path / f"seg{k}.sqlite", changes, start)
        start += count
        parts.append(Catalog(tmp_path / f"seg{k}.sqlite"))
        rows.append(part_rows)
        stack = Stack(parts, rows, deleted)
    assert len(stack.deleted.articles) == 40

    read: list[int] = []  # rows each SQLite query handed back
    real = Catalog._all

    def counted(self: Catalog, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        out = real(self, sql, args)
        read.append(len(out))
        return out

    monkeypatch.setattr(Catalog, "_all", counted)
    # 0-000 to 0-019 are live only in their undated second version: the range starts at 0-020
    assert stack.summary() == CatalogSummary(300, dt.date(2023, 1, 21), dt.date(2023, 10, 27))
    assert sum(read) == 3  # one row per part
    read.clear()
    text, at = bot.sources_text(stack, 2, 10)
    # each part's count, its first offset + limit (date, doc id) heads, and the page's 10 records
    assert sum(read) <= 3 + 3 * 20 + 10, read
    assert (at.page, at.pages) == (2, 30)
    assert text.startswith("<b>300 indexed articles</b>, newest first (page 2 of 30):\n")
    # the newest are the last segment's, 2-099 (2023-10-27) down: page 2 starts at 2-089
    assert "11. Title 2-089.txt v1\n<i>2023-10-17 · 2-089.txt</i>" in text
    assert "20. Title 2-080.txt v1\n<i>2023-10-08 · 2-080.txt</i>" in text and "More: /sources 3" in text
    last, at = bot.sources_text(stack, 30, 10)  # undated last: the re-added, doc ids descending
    assert (at.page, at.pages) == (30, 30)
    assert "300. Title 0-000.txt v2\n<i>date unknown · 0-000.txt</i>" in last
    assert "Title 0-000.txt v1" not in last and "More:" not in last
    empty, at = bot.sources_text(None, 4, 10)
    assert empty == "No articles are indexed yet." and (at.page, at.pages) == (1, 1)


# --- A generation as segments: a Stack of catalogs, the deleted articles left out ---------------------


class Ids:
    """Passage ids as the manifest hands them out: only ever growing, across segments."""

    def __init__(self) -> None:
        self.next = 0

    def article(self, doc: str, date: str | None, version: str = "1", passages: int = 2
                ) -> tuple[ArticleRecord, list[PassageRecord]]:
        """An article of `passages` passages whose texts say which version they are."""
        recs = [PassageRecord(self.next + j, doc, 10 * j, 10 * j + 9, f"{doc} v{version} part {j}")
                for j in range(passages)]
        self.next += passages
        return ArticleRecord(doc, f"hash-{doc}-{version}", date, f"Title {doc} v{version}"), recs


def one_file(tmp_path: Path, name: str, changes: Changes, base: Stack | None, next_article: int) -> Stack:
    """`changes` applied by a full write() onto `base`: a one-part Stack."""
    path = tmp_path / f"{name}.sqlite"
    rows, _ = write(path, changes, base, next_article)
    return Stack((Catalog(path),), (rows,), Deleted.empty())


def segments(tmp_path: Path) -> tuple[Stack, Stack, int]:
    """The same three commits twice: as three segments + deletions, and as one file rewritten each
    time (what the index does today). Live after them: a (re-added in part 2), b (re-added in part
    1), c (never touched) and f; gone: the old a and b, d and e. Also the next article number,
    counted as the manifest counts it."""
    ids = Ids()
    first = [ids.article("a.txt", "2024-01-01"), ids.article("b.txt", "2024-01-05"),
             ids.article("c.txt", None), ids.article("d.txt", "2023-06-01", passages=3)]
    second = [ids.article("b.txt", "2025-02-02", "2"), ids.article("e.txt", "2024-03-03")]
    third = [ids.article("a.txt", "2022-12-31", "2", passages=1), ids.article("f.txt", None)]
    commits = [(Changes(articles=first), []), (Changes(articles=second), ["b.txt", "d.txt"]),
               (Changes(articles=third), ["a.txt", "e.txt"])]

    parts: list[Catalog] = []
    rows: list[Rows] = []
    stack = Stack((), (), Deleted.empty())
    single: Stack | None = None
    start = 1  # the manifest's next_article: numbers are never reused
    for k, (changes, gone) in enumerate(commits):
        deleted = deleting(stack, gone + [a.doc_id for a, _ in changes.articles])
        path = tmp_path / f"seg{k}.sqlite"
        part_rows, count = write_segment(path, changes, start)
        assert count == len(changes.articles)
        parts.append(Catalog(path))
        rows.append(part_rows)
        stack = Stack(parts, rows, deleted)
        whole = Changes(removed=gone, articles=changes.articles)
        single = one_file(tmp_path, f"single{k}", whole, single, start)
        start += len(changes.articles)
    assert single is not None
    return stack, single, start


def same_reads(stack: Stack, ref: Stack) -> None:
    """Every read of `stack` answers as `ref`'s does."""
    assert stack.articles() == ref.articles()
    assert stack.hashes() == ref.hashes()
    assert stack.summary() == ref.summary()
    for size in (1, 2, 3, 10):
        for offset in range(0, 8):
            assert stack.newest(offset, size) == ref.newest(offset, size), (offset, size)
    every_id = list(range(0, 40))
    assert stack.passages(every_id) == ref.passages(every_id)
    assert stack.passages(every_id[::-1]) == ref.passages(every_id[::-1])
    for doc in "abcdefgz":
        assert stack.article(f"{doc}.txt") == ref.article(f"{doc}.txt")
    assert stack.articles_by_num(range(0, 20)) == ref.articles_by_num(range(0, 20))
    assert stack.passage_ids() == ref.passage_ids()
    assert stack.count("articles") == ref.count("articles")
    assert stack.count("passages") == ref.count("passages")
    for got, want in zip(dataclasses.astuple(stack.rows), dataclasses.astuple(ref.rows), strict=True):
        assert np.array_equal(got, want)


def test_a_stack_reads_only_the_live_articles_of_its_parts(tmp_path: Path) -> None:
    stack, single, _ = segments(tmp_path)
    assert len(stack.parts) == 3 and stack.deleted.articles.tolist() == [1, 2, 4, 6]
    assert [a.doc_id for a in stack.articles()] == ["a.txt", "b.txt", "c.txt", "f.txt"]
    # a re-added article shows its new version, in every read
    b = stack.article("b.txt")
    assert b is not None and b.hash == "hash-b.txt-2" and b.date == "2025-02-02"
    assert stack.hashes() == {"a.txt": "hash-a.txt-2", "b.txt": "hash-b.txt-2", "c.txt": "hash-c.txt-1",
                              "f.txt": "hash-f.txt-1"}
    # the deleted leave the count and the date range: d (2023-06-01) and the old a (2024-01-01) are gone
    assert stack.summary() == CatalogSummary(4, dt.date(2022, 12, 31), dt.date(2025, 2, 2))
    assert [a.doc_id for a in stack.newest(0, 10)] == ["b.txt", "a.txt", "f.txt", "c.txt"]
    assert [a.doc_id for a in stack.newest(1, 2)] == ["a.txt", "f.txt"]
    old_a, d = (0, 1), (6, 7, 8)
    assert stack.passages([*old_a, *d]) == [] and stack.article("d.txt") is None
    assert [p.text for p in stack.passages([13, 0, 4, 2, 9])] == [
        "a.txt v2 part 0", "c.txt v1 part 0", "b.txt v2 part 0"]  # in the order asked, 0 and 2 gone
    same_reads(stack, single)


def test_the_mapping_adaptors_read_a_stack(tmp_path: Path) -> None:
    stack, _, _ = segments(tmp_path)
    articles, passages = Articles(stack), Passages(stack)
    assert len(articles) == 4 and sorted(articles) == ["a.txt", "b.txt", "c.txt", "f.txt"]
    assert "d.txt" not in articles and articles["a.txt"].title == "Title a.txt v2"
    # The live passages, as segments() hands out ids: c 4-5, the new b 9-10, the new a 13, f 14-15
    # (the old a 0-1, the old b 2-3, d 6-8 and e 11-12 are deleted).
    assert len(passages) == 7 and list(passages) == [4, 5, 9, 10, 13, 14, 15]
    assert passages[13].text == "a.txt v2 part 0" and 9 in passages and 2 not in passages
    assert [p.id for p in passages.many([15, 2, 4, 11])] == [15, 4]
    for gone in (0, 3, 8, 12):  # the old a's, the old b's, d's and e's
        with pytest.raises(KeyError):
            passages[gone]


def test_write_folds_a_stack_into_what_one_file_would_hold(tmp_path: Path) -> None:
    """A full write of three segments with deletions, plus more changes, equals the single file
    those changes give, article by article (numbers included) and passage by passage."""
    stack, single, start = segments(tmp_path)
    ids = Ids()
    ids.next = 100
    more = Changes(removed=["c.txt"], articles=[ids.article("f.txt", "2024-07-07", "2"),
                                                ids.article("g.txt", "2021-01-01")],
                   titles={"b.txt": "A better title"})
    # `start` is the test's own count, as the manifest keeps it; what the catalog must agree with
    # is that it lies past every number the parts hold, deleted ones included (never reused).
    held = sorted(n for part in stack.parts for n in part.articles_by_num(range(0, 100)))
    assert held == list(range(1, start))
    merged = one_file(tmp_path, "merged", more, stack, start)
    ref = one_file(tmp_path, "ref", more, single, start)
    same_reads(merged, ref)
    nums = merged.articles_by_num(range(0, 20))
    # b and a keep their numbers; the new f and g come after every number the stack used
    assert {n: a.doc_id for n, a in nums.items()} == {5: "b.txt", 7: "a.txt", 9: "f.txt", 10: "g.txt"}
    assert nums[5].title == "A better title" and nums[7] == stack.articles_by_num([7])[7]
    assert set(merged.rows.doc.tolist()) == set(nums)  # every row's number names a live article


def test_write_segment_numbers_its_articles_from_next_article(tmp_path: Path) -> None:
    ids = Ids()
    ids.next = 50
    changes = Changes(articles=[ids.article("x.txt", "2024-01-01", passages=1),
                                ids.article("y.txt", None, passages=3), ids.article("w.txt", None)])
    rows, count = write_segment(tmp_path / "seg.sqlite", changes, 42)
    assert count == 3
    assert rows.ids.tolist() == list(range(50, 56)) and rows.doc.tolist() == [42, 43, 43, 43, 44, 44]
    assert rows.day.tolist() == [dt.date(2024, 1, 1).toordinal()] + [0] * 5
    cat = Catalog(tmp_path / "seg.sqlite")
    assert {n: a.doc_id for n, a in cat.articles_by_num([42, 43, 44]).items()} == {
        42: "x.txt", 43: "y.txt", 44: "w.txt"}
    with pytest.raises(AssertionError):
        write_segment(tmp_path / "other.sqlite", Changes(titles={"x.txt": "New"}), 45)


def test_deleting_adds_live_articles_and_ignores_unknown_ones(tmp_path: Path) -> None:
    stack, _, _ = segments(tmp_path)
    more = deleting(stack, ["b.txt", "z.txt", "d.txt"])  # b's live version is number 5, ids 9-10
    assert more.articles.tolist() == [1, 2, 4, 5, 6]
    assert more.passages.tolist() == sorted(stack.deleted.passages.tolist() + [9, 10])
    assert stack.deleted.articles.tolist() == [1, 2, 4, 6]  # the stack's own is left as it was


def test_deleted_round_trips_through_its_file(tmp_path: Path) -> None:
    d = Deleted.empty().plus([7, 3, 3], [30, 10, 20]).plus([5], [10, 15])
    assert d.articles.tolist() == [3, 5, 7] and d.passages.tolist() == [10, 15, 20, 30]
    write_deleted(tmp_path / "deleted.npz", d)
    back = read_deleted(tmp_path / "deleted.npz")
    assert back.articles.dtype == back.passages.dtype == np.int64
    assert back.articles.tolist() == [3, 5, 7] and back.passages.tolist() == [10, 15, 20, 30]
    assert read_deleted(write_empty(tmp_path)).articles.tolist() == []


def write_empty(tmp_path: Path) -> Path:
    path = tmp_path / "none.npz"
    write_deleted(path, Deleted.empty())
    return path


def test_a_stack_refuses_parts_out_of_id_order(tmp_path: Path) -> None:
    ids = Ids()
    low = Changes(articles=[ids.article("a.txt", None)])
    high = Changes(articles=[ids.article("b.txt", None)])
    rows_high, _ = write_segment(tmp_path / "high.sqlite", high, 2)
    rows_low, _ = write_segment(tmp_path / "low.sqlite", low, 1)
    parts = (Catalog(tmp_path / "high.sqlite"), Catalog(tmp_path / "low.sqlite"))
    with pytest.raises(ValueError, match="ascending"):
        Stack(parts, (rows_high, rows_low), Deleted.empty())
