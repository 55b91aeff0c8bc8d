"""`qabot eval`: metric functions against hand-computed cases, the queries file, the command."""

from __future__ import annotations

import json
import math
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from qabot.errors import QabotError
from qabot.evaluate import (
    KEYS,
    answer_found,
    answer_in_sentence,
    doc_key,
    hit_at,
    ndcg_at,
    percentile,
    ranked_docs,
    read_queries,
    reciprocal_rank,
)
from qabot.passage import Passage, Source
from tests.conftest import link_encoder, run_qabot

FIXTURE = Path(__file__).parent / "fixtures" / "retrieval"


def ranked(*docs: str) -> list[frozenset[str]]:
    return [frozenset([d]) for d in docs]


def passage(doc_id: str, text: str = "", dups: tuple[str, ...] = ()) -> Passage:
    return Passage(rank=1, score=0.5, text=text, doc_id=doc_id, path=doc_id, date=None, title="",
                   start=0, end=len(text), answer_start=0, answer_end=len(text),
                   duplicates=tuple(Source(d, d, None, "") for d in dups))


def test_hit_mrr_and_ndcg_by_hand() -> None:
    gold = frozenset({"a", "b"})
    r = ranked("x", "a", "y", "b")
    assert [hit_at(r, gold, k) for k in (1, 2, 10)] == [0.0, 1.0, 1.0]
    assert reciprocal_rank(r, gold) == 0.5
    # DCG = 1/log2(3) + 1/log2(5); ideal = 1 + 1/log2(3)
    expected = (1 / math.log2(3) + 1 / math.log2(5)) / (1 + 1 / math.log2(3))
    assert ndcg_at(r, gold) == pytest.approx(expected)
    assert ndcg_at(ranked("a"), frozenset({"a"})) == 1.0
    assert ndcg_at(ranked("b", "a"), gold) == pytest.approx(1.0)
    # outside the cutoff counts for nothing
    late = ranked(*[f"n{i}" for i in range(10)], "a")
    assert (hit_at(late, gold, 10), reciprocal_rank(late, gold), ndcg_at(late, gold)) == (0, 0, 0)
    # a gold article repeated further down is credited once
    assert ndcg_at([frozenset({"a"}), frozenset({"a"})], gold) == pytest.approx(1 / (1 + 1 / math.log2(3)))


def test_results_collapse_to_articles_and_duplicates_count() -> None:
    r = ranked_docs([passage("x.txt"), passage("x.txt"), passage("y.txt", dups=("a.txt",))])
    assert r == [frozenset({"x"}), frozenset({"y", "a"})]
    assert reciprocal_rank(r, frozenset({"a"})) == 0.5
    assert doc_key("world/001.txt") == "world/001" and doc_key("31715818") == "31715818"


def test_answer_recall_is_case_insensitive_and_top5_only() -> None:
    ps = [passage(f"{i}.txt", text=f"filler {i}") for i in range(5)] + [passage("6.txt", "Garnacho")]
    assert answer_found(ps, ["garnacho"]) == 0.0
    ps[2] = passage("2.txt", "A goal by GARNACHO in the 30th minute")
    assert answer_found(ps, ["nobody", "garnacho"]) == 1.0


def test_answer_sentence_looks_only_at_the_answering_sentence() -> None:
    text = "Filler first. Garnacho scored twice."
    p = passage("a.txt", text)
    # the whole passage is the answer span: found
    assert answer_in_sentence([p], ["garnacho"]) == 1.0
    # the answer span is the first sentence only: not found, though the passage holds it
    first = Passage(**{**p.__dict__, "answer_end": text.index(" Garnacho")})
    assert first.answer == "Filler first."
    assert answer_in_sentence([first], ["GARNACHO"]) == 0.0
    assert answer_in_sentence([first, p], ["garnacho"], k=1) == 0.0
    assert answer_in_sentence([first, p], ["garnacho"], k=3) == 1.0


def test_percentile_matches_numpy() -> None:
    values = [12.0, 3.5, 7.25, 100.0, 0.5, 42.0, 8.0]
    for q in (0, 50, 95, 100):
        assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)))
    assert math.isnan(percentile([], 50))


def test_malformed_lines_are_reported_by_number(tmp_path: Path) -> None:
    f = tmp_path / "q.jsonl"
    f.write_text(
        '{"id": "1", "question": "Who?", "gold_docs": ["a.txt", "b"], "answers": ["x"]}\n'
        "\n"
        "{not json\n"
        '{"id": "4", "gold_docs": []}\n'
        '{"id": "5", "question": "When?", "gold_docs": "a"}\n'
        '{"id": "6", "question": "Where?", "date": "2024-02-30"}\n'
        '["a list"]\n'
        '{"id": "8", "question": "Why?", "date": "2024-03-01"}\n'
        '{"id": "9", "question": "Who?", "question_date": "2022-06-10"}\n'
        '{"id": "10", "question": "Who?", "question_date": "June 10"}\n'
    )
    queries, problems = read_queries(f)
    assert [q.id for q in queries] == ["1", "8", "9"]
    assert queries[2].date is not None and queries[2].date.isoformat() == "2022-06-10"
    assert queries[0].gold_docs == frozenset({"a", "b"}) and queries[0].answers == ("x",)
    assert queries[1].date is not None and queries[1].date.isoformat() == "2024-03-01"
    assert [p.split(":")[0] for p in problems] == [f"line {n}" for n in (3, 4, 5, 6, 7, 10)]
    assert '"question_date"' in problems[-1]
    assert "not valid JSON" in problems[0] and '"question"' in problems[1]
    assert '"gold_docs"' in problems[2] and "YYYY-MM-DD" in problems[3]


def test_lines_that_are_not_text_or_too_deep_or_too_long_are_reported_and_skipped(tmp_path: Path) -> None:
    f = tmp_path / "q.jsonl"
    good = '{"id": "ok", "question": "Who won?"}'
    f.write_bytes(b"\n".join([
        good.encode(),
        b'{"question": "caf\xe9 owner?"}',  # Latin-1, not UTF-8
        b"[" * 100_000,
        b'{"question": "\\ud800 museum?"}',  # a lone surrogate, escaped in JSON
        ('{"question": "' + "why " * 600 + '"}').encode(),  # 2,399 characters once trimmed
        good.replace("ok", "last").encode(),
    ]))
    queries, problems = read_queries(f)
    assert [q.id for q in queries] == ["ok", "last"]  # the bad lines don't stop the rest
    assert [p.split(":")[0] for p in problems] == ["line 2", "line 3", "line 4", "line 5"]
    assert "not UTF-8 text" in problems[0] and "nested too deeply" in problems[1]
    assert "not text" in problems[2] and "2,399 characters" in problems[3]


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
def test_a_utf16_file_is_named_as_such(tmp_path: Path, encoding: str) -> None:
    f = tmp_path / "q.jsonl"
    f.write_text('{"question": "Who won?"}\n', encoding=encoding)
    with pytest.raises(QabotError, match="UTF-16 text, not UTF-8"):
        read_queries(f)


def test_random_bytes_are_not_utf8_text_and_a_utf8_bom_is_fine(tmp_path: Path) -> None:
    f = tmp_path / "q.jsonl"
    f.write_bytes(bytes(np.random.default_rng(7).integers(128, 256, 4000, dtype=np.uint8)))
    with pytest.raises(QabotError, match="is not UTF-8 text"):
        read_queries(f)
    f.write_bytes(b'\xef\xbb\xbf{"question": "Who won?"}\n')
    assert [q.question for q in read_queries(f)[0]] == ["Who won?"]


def test_qabot_eval_end_to_end(tmp_path: Path, encoder_cache: Path) -> None:
    shutil.copytree(FIXTURE / "seeds", tmp_path / "seeds")
    link_encoder(encoder_cache, tmp_path / "embeddings")
    lines = (FIXTURE / "queries.jsonl").read_text().splitlines()
    queries = tmp_path / "queries.jsonl"
    long = json.dumps({"question": "what " * 500})  # 2,500 characters: skipped, the rest go on
    queries.write_text("\n".join([*lines[:2], '{"question": ', *lines[2:], long]) + "\n")
    judged = sum(1 for ln in lines if json.loads(ln)["gold_docs"])

    started = time.perf_counter()
    proc = run_qabot("eval", "--json", str(queries))
    wall_ms = (time.perf_counter() - started) * 1000
    assert proc.returncode == 0, proc.stderr
    assert "line 3: not valid JSON" in proc.stderr and "Indexed 11 articles" in proc.stderr
    assert f"line {len(lines) + 2}: \"question\": the question is 2,499 characters" in proc.stderr
    assert f"Evaluating: done, {len(lines)} questions in" in proc.stderr, proc.stderr
    assert re.search(r"^Embedding: done, \d+ passages in \d+s", proc.stderr, re.M), proc.stderr
    result = json.loads(proc.stdout)
    assert tuple(result) == KEYS
    assert result["queries"] == len(lines)
    assert result["hit@1"] == result["hit@10"] == result["mrr@10"] == 1.0, result
    assert result["answer_recall@5"] == 1.0, result
    # Latency in milliseconds per question: a real-model question takes well over 0.1 ms (a
    # figure in seconds would not), and no question takes longer than the whole run did. (p50 <=
    # p95 and p50 > 0 hold for any list of timings, so they prove nothing.)
    assert result["p50_ms"] > 0.1 and result["p95_ms"] < wall_ms, (result, wall_ms)
    assert result["p50_ms"] * len(lines) / 2 < wall_ms, (result, wall_ms)  # half the questions took >= p50

    proc = run_qabot("eval", "--mode", "bm25", str(queries))
    assert proc.returncode == 0, proc.stderr
    assert "Index up to date" in proc.stderr and "mode bm25" in proc.stdout
    assert "Embedding" not in proc.stderr  # nothing to embed, nothing to tell
    hit1 = float(next(ln for ln in proc.stdout.splitlines() if "hit@1 " in ln).split()[-1])
    assert hit1 == pytest.approx((judged - 1) / judged, abs=1e-4)  # the paraphrase: no word in common
