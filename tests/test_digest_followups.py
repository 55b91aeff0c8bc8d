"""benchmarks/digest_followups.jsonl, follow-ups on one story of a many-story digest, stays well
formed: chat-style questions in our own words and short answer strings, never article text."""

from __future__ import annotations

import json
import re
from typing import Any

from tests.conftest import ROOT

FILE = ROOT / "benchmarks" / "digest_followups.jsonl"
STEM = re.compile(r"^(\d{4})(\d{2})(\d{2})_five-things-[a-z0-9-]+_[0-9a-f]{6}$")
KEYS = {"id", "doc", "question_date", "first", "followup", "answers", "first_answers"}


def rows() -> list[dict[str, Any]]:
    return [json.loads(line) for line in FILE.read_text(encoding="utf-8").splitlines()]


def test_every_line_is_a_dated_digest_follow_up_in_chat_style() -> None:
    lines = rows()
    assert len(lines) >= 20 and len({r["id"] for r in lines}) == len(lines)
    assert len({r["doc"] for r in lines}) >= 10  # not one digest's stories
    for r in lines:
        assert set(r) == KEYS, r["id"]
        match = STEM.match(r["doc"])
        assert match and "-".join(match.groups()) == r["question_date"], r["id"]  # asked that morning
        for text in (r["first"], r["followup"]):
            assert text == text.lower() and 2 <= len(text.split()) <= 10, r["id"]


def test_answers_are_short_strings_not_article_text() -> None:
    for r in rows():
        for answer in (*r["answers"], *r["first_answers"]):
            assert answer and len(answer.split()) <= 5 and len(answer) <= 40, r["id"]
