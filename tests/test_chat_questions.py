"""benchmarks/chat_questions.jsonl, the chat-style dev questions, stays well formed and readable by eval."""

from __future__ import annotations

import json
from collections import Counter

from qabot.evaluate import read_queries
from tests.conftest import ROOT

FILE = ROOT / "benchmarks" / "chat_questions.jsonl"
KINDS = {"who", "when", "where", "howmany", "what", "why"}
FIELDS = {"id", "question", "gold_docs", "answers", "question_date", "source", "kind", "of"}


def test_chat_questions_are_short_lowercase_and_complete() -> None:
    rows = [json.loads(line) for line in FILE.read_text(encoding="utf-8").splitlines()]
    assert all(set(r) == FIELDS and r["kind"] in KINDS for r in rows)
    assert len({r["id"] for r in rows}) == len(rows)
    assert all(3 <= len(r["question"].split()) <= 8 and r["question"] == r["question"].lower() for r in rows)
    assert all(r["gold_docs"] and r["answers"] for r in rows)
    rewrites = [r for r in rows if r["source"] == "rewrite"]
    new = [r for r in rows if r["source"] == "new"]
    assert len(rewrites) + len(new) == len(rows)
    # One rewrite per dev quiz question; the new ones spread over every kind.
    assert len(rewrites) == len({r["of"] for r in rewrites}) == 102
    assert len(new) >= 70 and all(r["of"] is None and len(r["gold_docs"]) == 1 for r in new)
    assert min(Counter(r["kind"] for r in new).values()) >= 10


def test_chat_questions_read_as_eval_queries() -> None:
    queries, problems = read_queries(FILE)
    assert problems == []
    assert len(queries) == len(FILE.read_text(encoding="utf-8").splitlines())
    assert all(q.date is not None for q in queries)


def test_the_other_kinds_of_chat_question_are_well_formed() -> None:
    """benchmarks/chat_kinds.jsonl: yes/no and "what happened" questions, which the dev sets lack."""
    path = ROOT / "benchmarks" / "chat_kinds.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert all(set(r) == FIELDS and r["kind"] in {"yesno", "happened"} and r["source"] == "new" for r in rows)
    assert len({r["id"] for r in rows}) == len(rows) >= 30
    assert all(3 <= len(r["question"].split()) <= 8 and r["question"] == r["question"].lower() for r in rows)
    queries, problems = read_queries(path)
    assert problems == [] and len(queries) == len(rows) and all(q.date is not None for q in queries)
