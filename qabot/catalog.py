"""The catalog: what is known of each indexed article and passage, in SQLite and rows.npz.

A generation's catalog is two files the commit protocol (store.py) names in the manifest:

    passages.sqlite  articles (number, doc id, hash, date, title, passage ids) and passages
                     (id, article, character span, text): read lazily, a query fetches its hits
    rows.npz         per passage, sorted by id: its article's number in the SQLite file and its
                     day, the few numbers a query needs for every passage (date windows, one per
                     article)

Both are written together (`write`, or `write_segment` for a segment holding only new articles),
because an article's number is its SQLite row id. Numbers are the caller's (`next_article`): unique
across the segments of a generation.

A generation is a few segments, each such a pair, plus a deletion list (`Deleted`: the article
numbers and passage ids of older segments no longer live). `Stack` reads them as one catalog.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import shutil
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from . import npz
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


class CatalogView(Protocol):
    """What readers ask of a catalog: one file (Catalog) or a generation's segments (Stack)."""

    def passages(self, ids: Sequence[int]) -> list[PassageRecord]: ...
    def article(self, doc_id: str) -> ArticleRecord | None: ...
    def articles_by_num(self, nums: Sequence[int]) -> dict[int, ArticleRecord]: ...
    def articles(self) -> list[ArticleRecord]: ...
    def summary(self) -> CatalogSummary: ...
    def newest(self, offset: int, limit: int) -> list[ArticleRecord]: ...
    def hashes(self) -> dict[str, str]: ...
    def passage_ids(self) -> list[int]: ...
    def count(self, table: str) -> int: ...


class Articles(Mapping[str, ArticleRecord]):
    """doc id -> ArticleRecord, read from the catalog on demand."""

    def __init__(self, catalog: CatalogView) -> None:
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

    def __init__(self, catalog: CatalogView) -> None:
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

    def plus(self, other: Rows) -> Rows:
        """These rows and `other`'s (ids disjoint), sorted by id."""
        return _sorted(Rows(np.concatenate([self.ids, other.ids]), np.concatenate([self.doc, other.doc]),
                            np.concatenate([self.day, other.day])))


def read_rows(path: Path) -> Rows:
    """The rows.npz file of a generation."""
    z = npz.read(path)
    return Rows(z["ids"], z["doc"], z["day"])


def write_rows(path: Path, rows: Rows) -> None:
    """Write rows.npz (the caller fsyncs it with the generation's other files)."""
    np.savez(path, ids=rows.ids, doc=rows.doc, day=rows.day)


@dataclass(frozen=True)
class Deleted:
    """What a generation no longer holds of its older segments: article numbers and their passage ids."""

    articles: np.ndarray  # int64 article numbers, sorted, each once
    passages: np.ndarray  # int64 passage ids, sorted, each once

    @staticmethod
    def empty() -> Deleted:
        z = np.zeros(0, dtype=np.int64)
        return Deleted(z, z)

    def plus(self, articles: Sequence[int] | np.ndarray, passages: Sequence[int] | np.ndarray) -> Deleted:
        """These deleted as well (a new Deleted; this one is left as is)."""
        return Deleted(_union(self.articles, articles), _union(self.passages, passages))


def _union(a: np.ndarray, b: Sequence[int] | np.ndarray) -> np.ndarray:
    return np.union1d(a, np.asarray(b, dtype=np.int64)).astype(np.int64)


def _member(values: np.ndarray, sorted_set: np.ndarray) -> np.ndarray:
    """values[i] in sorted_set, for each i (a binary search, not a hash per element)."""
    if not len(sorted_set):
        return np.zeros(len(values), dtype=bool)
    at = np.minimum(np.searchsorted(sorted_set, values), len(sorted_set) - 1)
    return np.asarray(sorted_set[at] == values)


def read_deleted(path: Path) -> Deleted:
    """A generation's deletion list (one .npz file)."""
    z = npz.read(path)
    return Deleted(z["articles"].astype(np.int64), z["passages"].astype(np.int64))


def write_deleted(path: Path, d: Deleted) -> None:
    """Write the deletion list (the caller fsyncs it with the generation's other files)."""
    with open(path, "wb") as f:  # a file object: np.savez would append ".npz" to another name
        np.savez(f, articles=d.articles, passages=d.passages)


# Leaves out deleted articles in SQL, where an aggregate or a LIMIT needs it; the parameter is
# the JSON list of deleted numbers (json_each reads it on the read-only, immutable connection too).
_LIVE = "num NOT IN (SELECT value FROM json_each(?))"
_COLUMNS = "num, doc_id, hash, date, title, ids"


class Stack:
    """The live catalog of a generation: its segments' Catalogs, the deleted articles left out.

    Parts are ordered by passage id and disjoint; every article's passages live in one part. A doc
    id may be in two parts (its old version deleted in the older one): only the live one shows.
    """

    def __init__(self, parts: Sequence[Catalog], rows: Sequence[Rows], deleted: Deleted) -> None:
        if len(parts) != len(rows):
            raise ValueError(f"{len(parts)} catalogs for {len(rows)} rows files")
        spans = [(int(r.ids[0]), int(r.ids[-1])) for r in rows if len(r.ids)]
        if any(a[1] >= b[0] for a, b in zip(spans, spans[1:], strict=False)):
            raise ValueError(f"segments must hold ascending, disjoint passage ids: {spans}")
        self._parts = tuple(parts)
        self._rows = tuple(rows)
        self._deleted = deleted
        self._gone_json = json.dumps(deleted.articles.tolist())
        self._gone = frozenset(deleted.articles.tolist())

    @property
    def parts(self) -> tuple[Catalog, ...]:
        """The segments' catalogs, oldest first."""
        return self._parts

    @property
    def deleted(self) -> Deleted:
        """What of the parts is no longer live."""
        return self._deleted

    @functools.cached_property
    def rows(self) -> Rows:
        """The live rows of all parts, sorted by id (the parts are in id order: no sort)."""
        if len(self._rows) == 1 and not len(self._deleted.passages):
            return self._rows[0]
        if not self._rows:
            return Rows.empty()
        ids = np.concatenate([r.ids for r in self._rows])
        keep = ~_member(ids, self._deleted.passages)
        return Rows(ids[keep], np.concatenate([r.doc for r in self._rows])[keep],
                    np.concatenate([r.day for r in self._rows])[keep])

    def passages(self, ids: Sequence[int]) -> list[PassageRecord]:
        """These live passages, in the order asked; unknown and deleted ids are left out."""
        want = np.asarray([int(i) for i in ids], dtype=np.int64)
        want = want[~_member(want, self._deleted.passages)]
        found: dict[int, PassageRecord] = {}
        for part, rows in zip(self._parts, self._rows, strict=True):
            mine = want[_member(want, rows.ids)]  # each part is asked only for the ids it holds
            if len(mine):
                found.update((p.id, p) for p in part.passages(mine.tolist()))
        return [found[int(i)] for i in ids if int(i) in found]

    def _live_by_doc(self, doc_ids: Sequence[str]) -> list[tuple[int, ArticleRecord]]:
        """(number, record) of the live articles with these doc ids."""
        out: list[tuple[int, ArticleRecord]] = []
        for part in self._parts:
            for i in range(0, len(doc_ids), 500):
                chunk = list(doc_ids[i : i + 500])
                rows = part._all(f"SELECT {_COLUMNS} FROM articles "
                                 f"WHERE doc_id IN ({','.join('?' * len(chunk))})", chunk)
                out += [(r[0], _article(r[1:])) for r in rows if r[0] not in self._gone]
        return out

    def article(self, doc_id: str) -> ArticleRecord | None:
        """The live article with this doc id, or None."""
        found = self._live_by_doc([doc_id])
        return found[0][1] if found else None

    def articles_by_num(self, nums: Sequence[int]) -> dict[int, ArticleRecord]:
        """Live articles by their number in rows.npz (numbers are unique across parts)."""
        live = [int(n) for n in nums if int(n) not in self._gone]
        out: dict[int, ArticleRecord] = {}
        for part in self._parts:
            out.update(part.articles_by_num(live))
        return out

    def articles(self) -> list[ArticleRecord]:
        """Every live article, by doc id."""
        out = [_article(r[1:]) for part in self._parts
               for r in part._all(f"SELECT {_COLUMNS} FROM articles") if r[0] not in self._gone]
        return sorted(out, key=lambda a: a.doc_id)

    def summary(self) -> CatalogSummary:
        """The number of live articles and their date range, counted by SQLite in each part."""
        counts = [part._all(f"SELECT count(*), min(date), max(date) FROM articles WHERE {_LIVE}",
                            [self._gone_json])[0] for part in self._parts]
        firsts = [c[1] for c in counts if c[1] is not None]
        lasts = [c[2] for c in counts if c[2] is not None]
        return CatalogSummary(sum(int(c[0]) for c in counts), _date(min(firsts, default=None)),
                              _date(max(lasts, default=None)))

    def newest(self, offset: int, limit: int) -> list[ArticleRecord]:
        """`limit` live articles from `offset` on, newest first: undated ones last, ties by doc id
        descending. Each part gives its first offset + limit; the page is cut from their merge."""
        offset, limit = max(0, offset), max(0, limit)
        order = "ORDER BY date IS NULL, date DESC, doc_id DESC"
        if len(self._parts) == 1:
            return [_article(r) for r in self._parts[0]._all(
                f"SELECT doc_id, hash, date, title, ids FROM articles WHERE {_LIVE} {order} "
                "LIMIT ? OFFSET ?", [self._gone_json, limit, offset])]
        # Only (date, doc id) for the merge, the page's records after: a deep page reads many heads.
        heads = [(date, doc) for part in self._parts for date, doc in part._all(
            f"SELECT date, doc_id FROM articles WHERE {_LIVE} {order} LIMIT ?",
            [self._gone_json, offset + limit])]
        # Live doc ids are unique, so this key orders them totally, as the SQL does.
        heads.sort(key=lambda h: (h[0] is not None, h[0] or "", h[1]), reverse=True)
        page = [doc for _, doc in heads[offset : offset + limit]]
        found = {a.doc_id: a for _, a in self._live_by_doc(page)}
        return [found[doc] for doc in page]

    def hashes(self) -> dict[str, str]:
        """doc id -> content hash of every live article: one query per part."""
        return {doc: h for part in self._parts
                for num, doc, h in part._all("SELECT num, doc_id, hash FROM articles")
                if num not in self._gone}

    def passage_ids(self) -> list[int]:
        """Every live passage id, ascending."""
        return [int(i) for i in self.rows.ids]

    def count(self, table: str) -> int:
        """The number of live "articles" or "passages"."""
        assert table in ("articles", "passages")
        if table == "passages":
            return len(self.rows.ids)
        return sum(int(part._all(f"SELECT count(*) FROM articles WHERE {_LIVE}", [self._gone_json])[0][0])
                   for part in self._parts)

    def close(self) -> None:
        """Close every part's connection (the object is unusable after)."""
        for part in self._parts:
            part.close()


def deleting(stack: Stack, doc_ids: Sequence[str]) -> Deleted:
    """`stack`'s Deleted plus its live articles with these doc ids (unknown ids are ignored)."""
    found = stack._live_by_doc(doc_ids)
    return stack.deleted.plus([num for num, _ in found], [i for _, a in found for i in a.ids])


def write(db_path: Path, changes: Changes, base: Stack | None, next_article: int) -> tuple[Rows, int]:
    """The new SQLite file of a full write: the live content of `base` (all its parts, article
    numbers kept) with the changes applied, new articles numbered from `next_article` up; returns
    its rows with the article count. `base` is None for a fresh index."""
    parts = base.parts if base is not None else ()
    if parts:
        shutil.copyfile(parts[0].path, db_path)
    db = _open_for_writing(db_path)
    try:
        if not parts:
            db.executescript(_SCHEMA)
        if base is not None and parts:
            _fold(db, base)
        gone = _remove(db, changes.removed + [a.doc_id for a, _ in changes.articles])
        db.executemany("UPDATE articles SET title = ? WHERE doc_id = ?",
                       [[title, doc] for doc, title in changes.titles.items()])
        _insert(db, changes.articles, next_article)
        db.commit()
        articles = int(db.execute("SELECT count(*) FROM articles").fetchone()[0])
    finally:
        db.close()
    old = base.rows if base is not None else Rows.empty()
    keep = ~np.isin(old.ids, np.array(gone, dtype=np.int64))
    new = rows_of(changes.articles, next_article)
    return _sorted(Rows(np.concatenate([old.ids[keep], new.ids]), np.concatenate([old.doc[keep], new.doc]),
                        np.concatenate([old.day[keep], new.day]))), articles


def write_segment(db_path: Path, changes: Changes, next_article: int) -> tuple[Rows, int]:
    """A new small segment holding only `changes.articles`, numbered next_article, next_article + 1,
    ... in order; returns its rows and article count. What the segment replaces or removes in
    older ones, the caller records in a Deleted (see `deleting`)."""
    assert not changes.titles, "a segment holds new articles only: a retitle is a full write"
    db = _open_for_writing(db_path)
    try:
        db.executescript(_SCHEMA)
        _insert(db, changes.articles, next_article)
        db.commit()
    finally:
        db.close()
    return rows_of(changes.articles, next_article), len(changes.articles)


def _open_for_writing(db_path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(db_path)
    # No journal: this file is unreachable until the manifest names it, and a crash
    # before that throws the whole generation away.
    db.execute("PRAGMA journal_mode = OFF")
    db.execute("PRAGMA synchronous = OFF")
    return db


def _fold(db: sqlite3.Connection, base: Stack) -> None:
    """Make `db` (a copy of base's first part) hold the live rows of every part, in SQL."""
    nums = json.dumps(base.deleted.articles.tolist())
    ids = json.dumps(base.deleted.passages.tolist())
    db.execute("DELETE FROM articles WHERE num IN (SELECT value FROM json_each(?))", [nums])
    db.execute("DELETE FROM passages WHERE id IN (SELECT value FROM json_each(?))", [ids])
    db.commit()
    for part in base.parts[1:]:
        # One at a time: SQLite attaches at most 10 files by default.
        db.execute("ATTACH DATABASE ? AS part", [str(part.path)])
        db.execute(f"INSERT INTO articles ({_COLUMNS}) SELECT {_COLUMNS} FROM part.articles "
                   f"WHERE {_LIVE}", [nums])
        db.execute("INSERT INTO passages (id, doc_id, start_char, end_char, text) "
                   "SELECT id, doc_id, start_char, end_char, text FROM part.passages "
                   "WHERE id NOT IN (SELECT value FROM json_each(?))", [ids])
        db.commit()  # DETACH is refused inside a transaction
        db.execute("DETACH DATABASE part")


def _remove(db: sqlite3.Connection, doc_ids: list[str]) -> list[int]:
    """Delete these articles and their passages; returns the passage ids deleted."""
    gone: list[int] = []
    for doc in doc_ids:
        row = db.execute("SELECT ids FROM articles WHERE doc_id = ?", [doc]).fetchone()
        if row is not None:
            gone += json.loads(row[0])
    db.executemany("DELETE FROM articles WHERE doc_id = ?", [[d] for d in doc_ids])
    db.executemany("DELETE FROM passages WHERE id = ?", [[i] for i in gone])
    return gone


def _insert(
    db: sqlite3.Connection, articles: list[tuple[ArticleRecord, list[PassageRecord]]], next_article: int,
) -> None:
    """Insert these articles, numbered explicitly from next_article up (as rows_of numbers them)."""
    for num, (art, passages) in enumerate(articles, start=next_article):
        db.execute("INSERT INTO articles (num, doc_id, hash, date, title, ids) VALUES (?,?,?,?,?,?)",
                   [num, art.doc_id, art.hash, art.date, art.title, json.dumps([p.id for p in passages])])
        db.executemany("INSERT INTO passages VALUES (?,?,?,?,?)",
                       [[p.id, p.doc_id, p.start, p.end, p.text] for p in passages])


def rows_of(articles: Sequence[tuple[ArticleRecord, Sequence[PassageRecord]]], next_article: int) -> Rows:
    """The rows of these new articles, numbered from next_article up in order, sorted by id:
    what a commit knows its segment will hold before any of its files is written."""
    ids: list[int] = []
    doc: list[int] = []
    day: list[int] = []
    for num, (art, passages) in enumerate(articles, start=next_article):
        ids += [p.id for p in passages]
        doc += [num] * len(passages)
        day += [art.day] * len(passages)
    return _sorted(Rows(np.array(ids, dtype=np.int64), np.array(doc, dtype=np.int64),
                        np.array(day, dtype=np.int64)))


def _sorted(rows: Rows) -> Rows:
    order = np.argsort(rows.ids, kind="stable")
    return Rows(rows.ids[order], rows.doc[order], rows.day[order])
