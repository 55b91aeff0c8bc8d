"""benchmarks/unanswerable.jsonl, the calibration seeds, stays well formed."""

from __future__ import annotations

import json
from collections import Counter

from tests.conftest import ROOT

KINDS = {"other_topic", "after_corpus", "chit_chat"}


def test_unanswerable_seeds_are_well_formed() -> None:
    lines = (ROOT / "benchmarks" / "unanswerable.jsonl").read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines]
    assert len(rows) >= 60
    assert all(set(r) == {"id", "question", "kind"} and r["kind"] in KINDS for r in rows)
    assert len({r["id"] for r in rows}) == len(rows)
    assert len({r["question"].lower() for r in rows}) == len(rows)
    assert all(r["question"].strip() == r["question"] and len(r["question"]) > 5 for r in rows)
    assert min(Counter(r["kind"] for r in rows).values()) >= 15
