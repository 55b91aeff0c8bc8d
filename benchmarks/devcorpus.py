"""The news dev corpus as the dev-set checkers read it, and their JSONL files. Standard library only.

Shared by check_chat_questions.py and check_chat_script.py, which run as scripts (or are loaded
from their files by the tests), so each puts this folder on sys.path before importing it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

_PLAIN_QUOTES = str.maketrans("\u2018\u2019\u201c\u201d", "''\"\"")


def fold(text: str) -> str:
    """Lowercase, with typographic quotes made plain, for answer matching."""
    return text.casefold().translate(_PLAIN_QUOTES)


class Corpus:
    """The dev corpus folder (<stem>.txt files), read lazily: each article's folded text and date."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.texts: dict[str, str | None] = {}

    def text(self, stem: str) -> str | None:
        """The folded text of an article, or None if the corpus has no such file."""
        if stem not in self.texts:
            path = self.folder / f"{stem}.txt"
            self.texts[stem] = fold(path.read_text(encoding="utf-8")) if path.is_file() else None
        return self.texts[stem]

    def date(self, stem: str) -> str:
        """The article's date from its first line (" date YYYY-MM-DD ...")."""
        return (self.text(stem) or "")[6:16]

    def has(self, stems: list[str], answer: str) -> bool:
        """Whether the answer occurs in one of the articles."""
        return any(fold(answer) in (self.text(s) or "") for s in stems)


def read_jsonl(path: Path) -> tuple[list[tuple[int, Any]], list[str]]:
    """The decoded lines of a JSONL file with their line numbers (blank lines skipped), and a
    "line N: not valid JSON (…)" for each line that does not parse."""
    decoded: list[tuple[int, Any]] = []
    problems: list[str] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            decoded.append((n, json.loads(line)))
        except json.JSONDecodeError as err:
            problems.append(f"line {n}: not valid JSON ({err.msg})")
    return decoded, problems
