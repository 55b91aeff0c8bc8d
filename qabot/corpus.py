"""Read the seeds folder into Articles; report the files that can't be read, by name and reason."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .errors import SeedsNotFound
from .headline import headline

# The delivered format: the file starts with " date YYYY-MM-DD " and the article follows.
_DATE_RE = re.compile(r"\A\s*date\s+(\S+)")
_ISO_RE = re.compile(r"\d{4}-\d{2}-\d{2}\Z")


@dataclass(frozen=True)
class Article:
    """One seed file: `text` is the whole file; the body starts at `body_start`."""

    doc_id: str  # path relative to the seeds folder, with forward slashes
    path: Path
    date: dt.date | None
    title: str
    text: str
    body_start: int
    content_hash: str


@dataclass(frozen=True)
class BadSeed:
    """A file that was skipped, and why."""

    doc_id: str
    reason: str


def seed_files(seeds: Path) -> Iterator[Path]:
    """Every *.txt below `seeds`, in a stable order, skipping hidden files and folders."""
    if not seeds.is_dir():
        raise SeedsNotFound(
            f"seeds folder {seeds} does not exist; create it and put *.txt articles in it, "
            "or point --seeds / QABOT_SEEDS at one"
        )
    for path in sorted(seeds.rglob("*.txt")):
        rel = path.relative_to(seeds)
        if any(part.startswith(".") for part in rel.parts) or not path.is_file():
            continue
        yield path


def read_corpus(seeds: Path) -> tuple[list[Article], list[BadSeed]]:
    """Parse every seed file; good ones become Articles, the rest BadSeeds with a reason."""
    articles: list[Article] = []
    bad: list[BadSeed] = []
    for path in seed_files(seeds):
        doc_id = path.relative_to(seeds).as_posix()
        try:
            data = path.read_bytes()
        except OSError as err:
            bad.append(BadSeed(doc_id, f"cannot be read ({err.strerror})"))
            continue
        result = parse_article(doc_id, path, data)
        (articles if isinstance(result, Article) else bad).append(result)  # type: ignore[arg-type]
    return articles, bad


def parse_article(doc_id: str, path: Path, data: bytes) -> Article | BadSeed:
    """Turn one file's bytes into an Article, or say why it can't be one."""
    if b"\x00" in data:
        return BadSeed(doc_id, "is binary (contains NUL bytes), not a text article")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        return BadSeed(doc_id, f"is not valid UTF-8 (bad byte at offset {err.start})")
    if text.startswith("\ufeff"):
        text = text[1:]  # a BOM is an encoding artefact, not content
    if not text.strip():
        return BadSeed(doc_id, "is empty")
    date: dt.date | None = None
    body_start = 0
    m = _DATE_RE.match(text)
    if m:
        value = m.group(1)
        try:
            if not _ISO_RE.match(value):
                raise ValueError
            date = dt.date.fromisoformat(value)
        except ValueError:
            return BadSeed(doc_id, f"has a malformed date {value!r} (expected date YYYY-MM-DD)")
        body_start = m.end()
    while body_start < len(text) and text[body_start].isspace():
        body_start += 1
    if body_start >= len(text):
        return BadSeed(doc_id, "has a date line but no article text")
    return Article(
        doc_id=doc_id,
        path=path,
        date=date,
        title=headline(text, body_start),
        text=text,
        body_start=body_start,
        content_hash=hashlib.sha256(data).hexdigest(),
    )
