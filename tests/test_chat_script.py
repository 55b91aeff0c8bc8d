"""benchmarks/chat_script.jsonl, the scripted chat (follow-ups, topic changes, latest), stays well formed."""

from __future__ import annotations

import importlib.util
import json
import re
from collections import Counter
from typing import Any

from tests.conftest import ROOT

FILE = ROOT / "benchmarks" / "chat_script.jsonl"
# The dev corpus builder names each article <YYYYMMDD>_<slug>_<hash> after its date line, so the
# dates can be compared here without the (copyrighted, unshipped) articles.
STEM = re.compile(r"^(\d{8})_[a-z0-9-]+_[0-9a-f]{6}$")


def rows() -> list[dict[str, Any]]:
    return [json.loads(line) for line in FILE.read_text(encoding="utf-8").splitlines()]


def checker() -> Any:
    """benchmarks/check_chat_script.py, loaded from its file (benchmarks/ is not a package)."""
    path = ROOT / "benchmarks" / "check_chat_script.py"
    spec = importlib.util.spec_from_file_location("check_chat_script", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def day(stem: str) -> str:
    match = STEM.match(stem)
    assert match, stem
    d = match.group(1)
    return f"{d[:4]}-{d[4:6]}-{d[6:]}"


def test_every_line_has_the_form_of_its_kind() -> None:
    lines = rows()
    assert [checker().line_problems(r) for r in lines] == [[] for _ in lines]
    assert len({r["id"] for r in lines}) == len(lines)
    counts = Counter(r["kind"] for r in lines)
    assert counts["followup"] >= 45 and counts["topic_change"] >= 45 and counts["latest"] >= 22


def test_articles_are_never_newer_than_the_question() -> None:
    for r in rows():
        stems = [s for name in ("first_gold", "gold", "older") for s in r.get(name, [])]
        assert all(day(s) <= r["question_date"] for s in stems), r["id"]


def test_follow_ups_sometimes_need_an_article_beyond_the_first_answer() -> None:
    follow = [r for r in rows() if r["kind"] == "followup"]
    beyond = [r for r in follow if not r["in_previous"]]
    assert len(beyond) >= 8
    # in_previous true: the follow-up's answer is in an article of the first question's gold.
    assert all(set(r["gold"]) & set(r["first_gold"]) for r in follow if r["in_previous"])
    assert all(not set(r["gold"]) & set(r["first_gold"]) for r in beyond)


def test_topic_changes_are_short_and_mostly_covered() -> None:
    changes = [r for r in rows() if r["kind"] == "topic_change"]
    short = [r for r in changes if 3 <= len(r["next"].split()) <= 5]
    assert len(short) * 4 >= len(changes)  # about a third are 3-5 words
    assert sum(not r["gold"] for r in changes) * 5 <= len(changes)  # most are answerable from the corpus


def test_latest_gold_is_the_newest_and_asked_in_the_dev_weeks() -> None:
    for r in (r for r in rows() if r["kind"] == "latest"):
        assert min(day(s) for s in r["gold"]) >= max(day(s) for s in r["older"]), r["id"]
        assert "2022-06-10" <= r["question_date"] <= "2022-08-26", r["id"]
