"""Read the seeds folder into Articles; report the files that can't be read, by name and reason."""

from __future__ import annotations

import codecs
import datetime as dt
import hashlib
import os
import re
import stat
from dataclasses import dataclass
from functools import cached_property
from operator import attrgetter
from pathlib import Path

from .errors import SeedsNotFound
from .headline import headline

# The delivered format: the file starts with " date YYYY-MM-DD " and the article follows.
_DATE_RE = re.compile(r"\s*date\s+(\S+)")  # matched at the text's start, after any BOM
_ISO_RE = re.compile(r"\d{4}-\d{2}-\d{2}\Z")
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)  # not on Windows, where links need privileges


@dataclass(frozen=True)
class Article:
    """One seed file: `text` is the whole file as decoded (a BOM included); the body starts at
    `body_start`."""

    doc_id: str  # path relative to the seeds folder, with forward slashes
    path: Path
    date: dt.date | None
    text: str
    body_start: int
    content_hash: str

    @cached_property
    def title(self) -> str:
        """Its headline (headline.py). Worked out when first asked for: a run reads every seed
        but needs the titles of new and changed articles only, and the headline rules cost
        ~2.7 ms an article (100,000 unchanged files: 4.5 minutes of a no-op `qabot index`)."""
        return headline(self.text, self.body_start)


@dataclass(frozen=True)
class BadSeed:
    """A file (or folder) that was skipped, and why."""

    doc_id: str  # printable: a name that is not valid UTF-8 is shown with \xNN escapes
    reason: str
    # Whether what was indexed under this name stays in the index: yes for a file that is there
    # but unreadable now (an editor may be half-way through saving it); no for a file qabot
    # refuses to read at all (a link out of the seeds folder), whose old passages must go.
    keep: bool = True
    folder: bool = False  # doc_id names a folder: the above applies to every article below it


@dataclass(frozen=True)
class SeedFile:
    """An article file found in the seeds folder: its doc id, and the file to read."""

    doc_id: str
    # The file itself or, for a symbolic link, its target (inside the seeds folder), as the OS
    # path string: building a Path for each of 100,000 files took 0.5 s of a 2.1 s no-op
    # `qabot index`, which reads only the files whose signature changed (signatures.py).
    location: str

    @property
    def path(self) -> Path:
        """The file to read, as a Path."""
        return Path(self.location)


def check_seeds_folder(seeds: Path) -> None:
    """Raise SeedsNotFound unless `seeds` is a folder."""
    if not seeds.is_dir():
        raise SeedsNotFound(
            f"seeds folder {seeds} does not exist; create it and put *.txt articles in it, "
            "or point --seeds / QABOT_SEEDS at one"
        )


def printable_name(name: str) -> str:
    """A file name as text that can be printed and stored: bytes that are not UTF-8 (kept by
    Python as lone surrogates, which SQLite and JSON refuse) become \\xNN escapes."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def scan_seeds(seeds: Path) -> tuple[list[SeedFile], list[BadSeed]]:
    """Every *.txt below `seeds` that may be read, in doc id order, and what was refused.

    Only regular files inside the folder are articles: symbolic links are not followed out of
    it (`ln -s /etc/shadow seeds/x.txt` must not put a system file into the index), nor into
    folders (which could loop); hidden files and folders are skipped.
    """
    check_seeds_folder(seeds)
    root = seeds.resolve()
    try:
        found = _scan(seeds, root, "")
    except OSError as err:
        raise SeedsNotFound(f"seeds folder {seeds} cannot be read ({err.strerror})") from None
    files = sorted((f for f in found if isinstance(f, SeedFile)), key=attrgetter("doc_id"))
    return files, [b for b in found if isinstance(b, BadSeed)]


def _scan(folder: Path, root: Path, prefix: str) -> list[SeedFile | BadSeed]:
    """The files and refusals below `folder`, whose doc ids start with `prefix`; OSError when
    `folder` itself can't be listed."""
    with os.scandir(folder) as listing:
        entries = sorted(listing, key=attrgetter("name"))
    out: list[SeedFile | BadSeed] = []
    for entry in entries:
        rel = prefix + entry.name
        if entry.name.startswith("."):
            continue
        try:
            is_dir = entry.is_dir(follow_symlinks=False)
            is_link = entry.is_symlink()
        except OSError:  # gone since the listing
            continue
        if not (is_dir or is_link or rel.endswith(".txt")):
            continue
        if not rel.isascii() and printable_name(rel) != rel:  # isascii: a quick yes for most
            out.append(BadSeed(printable_name(rel), "has a name that is not valid UTF-8; rename it",
                               keep=False, folder=is_dir))
        elif is_link:
            out += _link(Path(entry.path), root, rel)
        elif is_dir:
            try:
                out += _scan(Path(entry.path), root, rel + "/")
            except OSError as err:
                out.append(BadSeed(rel, f"is a folder that cannot be read ({err.strerror}); its "
                                        "articles keep their last indexed version", folder=True))
        else:
            out.append(SeedFile(rel, entry.path))
    return out


def _link(path: Path, root: Path, rel: str) -> list[SeedFile | BadSeed]:
    """A symbolic link in the seeds folder: its target when that is a file inside the folder."""
    try:
        target = path.resolve(strict=True)
    except FileNotFoundError:
        if rel.endswith(".txt") or not Path(rel).suffix:  # an article, or maybe a folder
            return [BadSeed(rel, "is a symbolic link to nothing (its target is missing)", keep=False)]
        return []
    except (OSError, RuntimeError):  # a loop of links, or a target we may not look at
        return [BadSeed(rel, "is a symbolic link that cannot be followed", keep=False)]
    inside = target.is_relative_to(root)
    if target.is_dir():
        where = ("inside the seeds folder; its articles are indexed under their own path"
                 if inside else "outside the seeds folder")
        return [BadSeed(rel, f"is a symbolic link to a folder {where}", keep=False, folder=True)]
    if not rel.endswith(".txt"):
        return []
    if not inside:
        return [BadSeed(rel, "is a symbolic link to a file outside the seeds folder", keep=False)]
    return [SeedFile(rel, str(target))]


def read_corpus(seeds: Path, max_bytes: int | None = None) -> tuple[list[Article], list[BadSeed]]:
    """Parse every seed file; good ones become Articles, the rest BadSeeds with a reason.
    Files over `max_bytes` are not read."""
    articles: list[Article] = []
    files, bad = scan_seeds(seeds)
    root = seeds.resolve()
    for seed in files:
        result = read_seed(seed, max_bytes, root)
        (articles if isinstance(result, Article) else bad).append(result)  # type: ignore[arg-type]
    return articles, bad


def size(n: int) -> str:
    """A file size as people read it: "1.5 MB", "12.3 kB", "512 bytes" (never "0.0 MB")."""
    if n < 1000:
        return f"{n} bytes"
    value, unit = (n / 1e6, "MB") if n >= 1_000_000 else (n / 1e3, "kB")
    value = round(value, 1)
    return f"{value:,.0f} {unit}" if value.is_integer() else f"{value:,.1f} {unit}"


def read_seed(seed: SeedFile, max_bytes: int | None = None, root: Path | None = None) -> Article | BadSeed:
    """Read and parse one seed file, refusing anything but a regular file (inside `root`)."""
    try:
        # O_NOFOLLOW: a file swapped for a link since the scan is refused, not followed;
        # O_NONBLOCK: opening a FIFO named *.txt must not hang the run.
        fd = os.open(seed.location, os.O_RDONLY | _NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
    except OSError as err:
        return BadSeed(seed.doc_id, f"cannot be read ({err.strerror})")
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if root is not None and not _opened_inside(f.fileno(), root):
            return BadSeed(seed.doc_id, "was reached through a link out of the seeds folder "
                                        "(a folder replaced since the scan?)", keep=False)
        if not stat.S_ISREG(info.st_mode):
            return BadSeed(seed.doc_id, "is not a regular file", keep=False)
        # The limit as the setting says it (in MB); the file's size as people read one.
        limit = f"over the {max_bytes / 1e6:g} MB limit ([paths] max_file_mb)" if max_bytes else ""
        if max_bytes is not None and info.st_size > max_bytes:
            return BadSeed(seed.doc_id, f"is {size(info.st_size)}, {limit}")
        try:
            data = f.read() if max_bytes is None else f.read(max_bytes + 1)
        except OSError as err:
            return BadSeed(seed.doc_id, f"cannot be read ({err.strerror})")
    if max_bytes is not None and len(data) > max_bytes:  # it grew since fstat
        return BadSeed(seed.doc_id, f"is {limit}")
    return parse_article(seed.doc_id, seed.path, data)


def _opened_inside(fd: int, root: Path) -> bool:
    """Whether the open file lies below `root`. O_NOFOLLOW guards only the last part of a path: a
    folder on the way swapped for a link after the scan would lead out. Linux says where an open
    file really is; elsewhere the scan's check has to do."""
    try:
        real = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return True
    # Strings, not Path.is_relative_to: both are absolute and normalised here, and building two
    # Paths per file was a quarter of a no-op run over 100,000 seed files.
    top = str(root)
    return real == top or real.startswith(top.rstrip(os.sep) + os.sep)


def parse_article(doc_id: str, path: Path, data: bytes) -> Article | BadSeed:
    """Turn one file's bytes into an Article, or say why it can't be one."""
    for mark, name in ((codecs.BOM_UTF32_LE, "UTF-32"), (codecs.BOM_UTF32_BE, "UTF-32"),
                       (codecs.BOM_UTF16_LE, "UTF-16"), (codecs.BOM_UTF16_BE, "UTF-16")):
        if data.startswith(mark) and _decodes(data, name):
            return BadSeed(doc_id, f"is {name}, not UTF-8; save it as UTF-8")
    if b"\x00" in data:
        return BadSeed(doc_id, "is binary (contains NUL bytes), not a text article")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        return BadSeed(doc_id, f"is not valid UTF-8 (bad byte at offset {err.start})")
    # A BOM stays in `text` as its first character, so that offsets count the characters of
    # the file as decoded (`text == file[start:end]` holds for it too); the body starts after it.
    bom = 1 if text.startswith("\ufeff") else 0
    if not text[bom:].strip():
        return BadSeed(doc_id, "is empty")
    date: dt.date | None = None
    body_start = bom
    m = _DATE_RE.match(text, bom)
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
        text=text,
        body_start=body_start,
        content_hash=hashlib.sha256(data).hexdigest(),
    )


def _decodes(data: bytes, encoding: str) -> bool:
    try:
        data.decode(encoding.lower().replace("-", ""))
    except UnicodeDecodeError:
        return False
    return True
