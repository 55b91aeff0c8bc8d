"""The catalog: what is known of each indexed article and passage, in SQLite and rows.npz.

A generation's catalog is two files the commit protocol (store.py) names in the manifest:

    passages.sqlite  articles (number, doc id, hash, date, title, passage ids) and passages
                     (id, article, character span, text): read lazily, a query fetches its hits
    rows.npz         per passage, sorted by id: its article's number in the SQLite file and its
                     day, the few numbers a query needs for every passage (date windows, one per
                     article)

Both are written together (`write`), because an article's number is its SQLite row id.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import IndexDamaged

_SCHEMA = """
CREATE TABLE articles (
    num INTEGER PRIMARY KEY,      -- the article's number in rows.npz
    doc_id TEXT NOT NULL UNIQUE,  -- file name in the seeds folder
    hash TEXT NOT NULL,           -- sha256 of the file: what `qabot index` diffs
    date TEXT,                    -- YYYY-MM-DD, or NULL when the file has none
    title TEXT NOT NULL,
    ids TEXT NOT NULL             -- JSON list of its passage ids, in reading order
);
CREATE TABLE passages (
    id INTEGER PRIMARY KEY,       -- the vector's id in vectors.faiss
    doc_id TEXT NOT NULL,
    start_char INTEGER NOT NULL,  -- [start_char, end_char) in the article file
    end_char INTEGER NOT NULL,
    text TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class PassageRecord:
    """A stored passage: its id in FAISS, its article and its character span in the file."""

    id: int
    doc_id: str
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class ArticleRecord:
    """A stored article: what the indexer diffs (hash) and what citations show."""

    doc_id: str
    hash: str
    date: str | None
    title: str
    ids: tuple[int, ...] = ()

    @property
    def day(self) -> int:
        """Proleptic ordinal of the date; 0 when undated."""
        return dt.date.fromisoformat(self.date).toordinal() if self.date else 0


@dataclass(frozen=True)
class CatalogSummary:
    """How many articles a catalog holds and the dates of its oldest and newest (None: no dated one)."""

    articles: int
    first: dt.date | None
    last: dt.date | None


@dataclass
class Changes:
    """What a commit does to the current catalog: articles gone, articles (re)written."""

    removed: list[str] = field(default_factory=list)  # doc ids, incl. the old version of changed ones
    articles: list[tuple[ArticleRecord, list[PassageRecord]]] = field(default_factory=list)
    titles: dict[str, str] = field(default_factory=dict)  # doc id -> new title of a kept article


class Catalog:
    """A generation's SQLite file, read-only and lazily: queries fetch only what they show.

    The file never changes once committed, so it is opened `immutable` (no locking, no
    journal checks); one connection serves every thread, behind a lock.
    """

    def __init__(self, path: Path) -> None:
        if not path.is_file():
            raise FileNotFoundError(path)
        self.path = path
        self._db = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True, check_same_thread=False)
        self._lock = threading.Lock()

    def _all(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        try:
            with self._lock:
                return self._db.execute(sql, args).fetchall()
        except sqlite3.DatabaseError as err:  # incl. OperationalError: the file went away
            raise IndexDamaged(f"{self.path} can't be read ({err}); run `qabot index` to "
                               "repair the index") from None

    def passages(self, ids: Sequence[int]) -> list[PassageRecord]:
        """These passages, in the order asked; unknown ids are left out."""
        found: dict[int, PassageRecord] = {}
        for i in range(0, len(ids), 500):  # SQLite caps the number of parameters
            part = [int(x) for x in ids[i : i + 500]]
            rows = self._all(f"SELECT id, doc_id, start_char, end_char, text FROM passages "
                             f"WHERE id IN ({','.join('?' * len(part))})", part)
            found.update((r[0], PassageRecord(*r)) for r in rows)
        return [found[int(i)] for i in ids if int(i) in found]

    def article(self, doc_id: str) -> ArticleRecord | None:
        """The article with this doc id, or None."""
        rows = self._all("SELECT doc_id, hash, date, title, ids FROM articles WHERE doc_id = ?", [doc_id])
        return _article(rows[0]) if rows else None

    def articles_by_num(self, nums: Sequence[int]) -> dict[int, ArticleRecord]:
        """Articles by their number in rows.npz."""
        out: dict[int, ArticleRecord] = {}
        for i in range(0, len(nums), 500):
            part = [int(x) for x in nums[i : i + 500]]
            rows = self._all(f"SELECT num, doc_id, hash, date, title, ids FROM articles "
                             f"WHERE num IN ({','.join('?' * len(part))})", part)
            out.update((r[0], _article(r[1:])) for r in rows)
        return out

    def articles(self) -> list[ArticleRecord]:
        """Every article, by doc id."""
        return [_article(r) for r in
                self._all("SELECT doc_id, hash, date, title, ids FROM articles ORDER BY doc_id")]

    def summary(self) -> CatalogSummary:
        """The number of articles and their date range, counted by SQLite (no row is read here)."""
        # Dates are stored as YYYY-MM-DD, so text order is date order; min/max skip NULLs.
        count, first, last = self._all("SELECT count(*), min(date), max(date) FROM articles")[0]
        return CatalogSummary(int(count), _date(first), _date(last))

    def newest(self, offset: int, limit: int) -> list[ArticleRecord]:
        """`limit` articles from `offset` on, newest first: undated ones last, ties by doc id
        descending (what /sources pages through without reading every article)."""
        return [_article(r) for r in self._all(
            "SELECT doc_id, hash, date, title, ids FROM articles "
            "ORDER BY date IS NULL, date DESC, doc_id DESC LIMIT ? OFFSET ?",
            [max(0, limit), max(0, offset)])]

    def hashes(self) -> dict[str, str]:
        """doc id -> content hash of every article: what `qabot index` diffs against."""
        return dict(self._all("SELECT doc_id, hash FROM articles"))

    def passage_ids(self) -> list[int]:
        """Every passage id, ascending."""
        return [r[0] for r in self._all("SELECT id FROM passages ORDER BY id")]

    def count(self, table: str) -> int:
        """The number of rows of "articles" or "passages"."""
        assert table in ("articles", "passages")
        return int(self._all(f"SELECT count(*) FROM {table}")[0][0])

    def close(self) -> None:
        """Close the connection (the object is unusable after)."""
        with self._lock:
            self._db.close()


def _article(row: Sequence[Any]) -> ArticleRecord:
    return ArticleRecord(row[0], row[1], row[2], row[3], tuple(json.loads(row[4])))


def _date(text: str | None) -> dt.date | None:
    return dt.date.fromisoformat(text) if text else None


class Articles(Mapping[str, ArticleRecord]):
    """doc id -> ArticleRecord, read from the catalog on demand."""

    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog

    def __getitem__(self, doc_id: str) -> ArticleRecord:
        found = self._catalog.article(doc_id)
        if found is None:
            raise KeyError(doc_id)
        return found

    def __contains__(self, doc_id: object) -> bool:
        return isinstance(doc_id, str) and self._catalog.article(doc_id) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(a.doc_id for a in self._catalog.articles())

    def __len__(self) -> int:
        return self._catalog.count("articles")


class Passages(Mapping[int, PassageRecord]):
    """passage id -> PassageRecord, read from the catalog on demand."""

    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog

    def __getitem__(self, pid: int) -> PassageRecord:
        found = self._catalog.passages([pid])
        if not found:
            raise KeyError(pid)
        return found[0]

    def many(self, ids: Sequence[int]) -> list[PassageRecord]:
        """These passages, in the order asked; unknown ids are left out."""
        return self._catalog.passages(ids)

    def __iter__(self) -> Iterator[int]:
        return iter(self._catalog.passage_ids())

    def __len__(self) -> int:
        return self._catalog.count("passages")


@dataclass(frozen=True)
class Rows:
    """Per passage, sorted by id: its article's number and day (0: undated)."""

    ids: np.ndarray
    doc: np.ndarray
    day: np.ndarray

    @staticmethod
    def empty() -> Rows:
        z = np.zeros(0, dtype=np.int64)
        return Rows(z, z, z)


def read_rows(path: Path) -> Rows:
    """The rows.npz file of a generation."""
    with np.load(path, allow_pickle=False) as z:
        return Rows(z["ids"], z["doc"], z["day"])


def write_rows(path: Path, rows: Rows) -> None:
    """Write rows.npz (the caller fsyncs it with the generation's other files)."""
    np.savez(path, ids=rows.ids, doc=rows.doc, day=rows.day)


def write(db_path: Path, changes: Changes, base: tuple[Path, Rows] | None) -> tuple[Rows, int]:
    """The new SQLite file (a copy of `base`'s with the changes applied) and its rows; returns
    the rows with the article count. `base` is the current catalog's file and rows, None for a
    fresh index."""
    if base is not None:
        shutil.copyfile(base[0], db_path)
    db = sqlite3.connect(db_path)
    try:
        # No journal: this file is unreachable until the manifest names it, and a crash
        # before that throws the whole generation away.
        db.execute("PRAGMA journal_mode = OFF")
        db.execute("PRAGMA synchronous = OFF")
        if base is None:
            db.executescript(_SCHEMA)
        gone: list[int] = []
        replaced = changes.removed + [a.doc_id for a, _ in changes.articles]
        for doc in replaced:
            row = db.execute("SELECT ids FROM articles WHERE doc_id = ?", [doc]).fetchone()
            if row is not None:
                gone += json.loads(row[0])
        db.executemany("DELETE FROM articles WHERE doc_id = ?", [[d] for d in replaced])
        db.executemany("DELETE FROM passages WHERE id = ?", [[i] for i in gone])
        db.executemany("UPDATE articles SET title = ? WHERE doc_id = ?",
                       [[title, doc] for doc, title in changes.titles.items()])
        new_ids, new_doc, new_day = [], [], []
        for art, passages in changes.articles:
            cur = db.execute(
                "INSERT INTO articles (doc_id, hash, date, title, ids) VALUES (?,?,?,?,?)",
                [art.doc_id, art.hash, art.date, art.title, json.dumps([p.id for p in passages])])
            db.executemany("INSERT INTO passages VALUES (?,?,?,?,?)",
                           [[p.id, p.doc_id, p.start, p.end, p.text] for p in passages])
            new_ids += [p.id for p in passages]
            new_doc += [cur.lastrowid] * len(passages)
            new_day += [art.day] * len(passages)
        db.commit()
        articles = int(db.execute("SELECT count(*) FROM articles").fetchone()[0])
    finally:
        db.close()
    old = base[1] if base is not None else Rows.empty()
    keep = ~np.isin(old.ids, np.array(gone, dtype=np.int64))
    ids = np.concatenate([old.ids[keep], np.array(new_ids, dtype=np.int64)])
    order = np.argsort(ids, kind="stable")
    rows = Rows(ids[order],
                np.concatenate([old.doc[keep], np.array(new_doc, dtype=np.int64)])[order],
                np.concatenate([old.day[keep], np.array(new_day, dtype=np.int64)])[order])
    return rows, articles
