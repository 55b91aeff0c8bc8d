"""`qabot eval`: run a file of questions with known answers and score the ranking.

Metrics are at article level (passages collapsed to their article, best rank kept; a result
that lists duplicate sources counts for each of them), as BEIR and MTEB report them.
"""

from __future__ import annotations

import codecs
import datetime as dt
import json
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .answer import AnswerOptions, respond
from .config import SearchOptions
from .errors import BadQuestion, QabotError
from .passage import Passage
from .reader import Retriever
from .retrieve import DEFAULTS, check_question, search

CUTOFF = 10
KEYS = ("hit@1", "hit@5", "hit@10", "mrr@10", "ndcg@10", "answer_recall@5", "answer_sentence@1",
        "answer_sentence@3", "p50_ms", "p95_ms", "queries")
_ANSWER_KEYS = ("answer_recall@5", "answer_sentence@1", "answer_sentence@3")


@dataclass(frozen=True)
class Query:
    """One line of a queries file."""

    id: str
    question: str
    gold_docs: frozenset[str]  # doc ids without their .txt suffix
    answers: tuple[str, ...] = ()
    date: dt.date | None = None  # the question's as-of date


def doc_key(doc_id: str) -> str:
    """A doc id as queries files give it: the path under seeds/, with or without `.txt`."""
    return doc_id[:-4] if doc_id.endswith(".txt") else doc_id


def read_queries(path: Path) -> tuple[list[Query], list[str]]:
    """The queries of a JSONL file, and a 'line N: reason' for every line that isn't one.
    QabotError when the file as a whole is not UTF-8 text (UTF-16 is named, as Windows tools
    write it)."""
    data = path.read_bytes()
    if _utf16(data):
        raise QabotError(f"{path} is UTF-16 text, not UTF-8; save it as UTF-8 and run it again")
    data = data.removeprefix(codecs.BOM_UTF8)  # Notepad's UTF-8 mark is no part of line 1
    queries: list[Query] = []
    problems: list[str] = []
    undecodable = 0
    for n, raw in enumerate(data.split(b"\n"), start=1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            undecodable += 1
            problems.append(f"line {n}: not UTF-8 text (byte {err.start + 1} of the line)")
            continue
        if not line.strip():
            continue
        try:
            queries.append(parse_query(json.loads(line), n))
        except json.JSONDecodeError as err:
            problems.append(f"line {n}: not valid JSON ({err.msg} at column {err.colno})")
        except RecursionError:  # json recurses once per nested [ or {
            problems.append(f"line {n}: nested too deeply to be a query")
        except ValueError as err:
            problems.append(f"line {n}: {err}")
    if undecodable and undecodable == len(problems) and not queries:
        raise QabotError(f"{path} is not UTF-8 text (no line of it is); save it as UTF-8 JSONL")
    return queries, problems


def _utf16(data: bytes) -> bool:
    """A byte-order mark, or ASCII text with a zero byte beside every character."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return True
    head = data[:200]
    return len(head) >= 8 and (not any(head[1::2]) or not any(head[0::2]))


def parse_query(obj: Any, n: int = 0) -> Query:
    """Check one decoded line; ValueError says what is wrong with it."""
    if not isinstance(obj, dict):
        raise ValueError("not a JSON object")
    question = obj.get("question")
    if not isinstance(question, str) or not question.strip():
        raise ValueError('"question" is missing or not a non-empty string')
    try:
        check_question(question)  # the checks `qabot ask` makes: length, and text at all
    except BadQuestion as err:
        raise ValueError(f'"question": {err}') from None
    gold = obj.get("gold_docs", [])
    answers = obj.get("answers", [])
    for name, value in (("gold_docs", gold), ("answers", answers)):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError(f'"{name}" must be a list of strings')
    # RealTime QA-style files name the day the question was asked "question_date".
    key = "date" if obj.get("date") is not None else "question_date"
    date = obj.get(key)
    try:
        as_of = dt.date.fromisoformat(date) if date is not None else None
    except (TypeError, ValueError):
        raise ValueError(f'"{key}" must be YYYY-MM-DD, not {_shown(date)}') from None
    return Query(id=str(obj.get("id", n)), question=question, answers=tuple(answers), date=as_of,
                 gold_docs=frozenset(doc_key(d) for d in gold))


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def ranked_docs(passages: Sequence[Passage]) -> list[frozenset[str]]:
    """Each result's articles (itself and its duplicates), first occurrence of an article kept."""
    seen: set[str] = set()
    out: list[frozenset[str]] = []
    for p in passages:
        docs = frozenset(doc_key(d) for d in (p.doc_id, *(s.doc_id for s in p.duplicates)))
        if docs <= seen:
            continue
        out.append(docs - seen)
        seen |= docs
    return out


def first_hit(ranked: Sequence[frozenset[str]], gold: frozenset[str], k: int = CUTOFF) -> int | None:
    """1-based rank of the first result holding a gold article within the top k, or None."""
    for rank, docs in enumerate(ranked[:k], start=1):
        if docs & gold:
            return rank
    return None


def hit_at(ranked: Sequence[frozenset[str]], gold: frozenset[str], k: int) -> float:
    """1.0 when a gold article is in the top k."""
    return 0.0 if first_hit(ranked, gold, k) is None else 1.0


def reciprocal_rank(ranked: Sequence[frozenset[str]], gold: frozenset[str], k: int = CUTOFF) -> float:
    """1 / rank of the first gold article within the top k, else 0."""
    rank = first_hit(ranked, gold, k)
    return 0.0 if rank is None else 1.0 / rank


def ndcg_at(ranked: Sequence[frozenset[str]], gold: frozenset[str], k: int = CUTOFF) -> float:
    """Binary-relevance nDCG@k: each gold article counts once, at the first rank it appears."""
    if not gold:
        return 0.0
    credited: set[str] = set()
    dcg = 0.0
    for rank, docs in enumerate(ranked[:k], start=1):
        new = (docs & gold) - credited
        if new:
            dcg += 1.0 / math.log2(rank + 1)
            credited |= new
    ideal = sum(1.0 / math.log2(r + 1) for r in range(1, min(len(gold), k) + 1))
    return dcg / ideal


def answer_found(passages: Sequence[Passage], answers: Iterable[str], k: int = 5) -> float:
    """1.0 when any answer string occurs, ignoring case, in one of the top k passages."""
    texts = [p.text.casefold() for p in passages[:k]]
    return 1.0 if any(a.casefold() in t for a in answers for t in texts) else 0.0


def answer_in_sentence(passages: Sequence[Passage], answers: Iterable[str], k: int = 1) -> float:
    """1.0 when any answer string occurs, ignoring case, in the answering sentence of one of the
    top k passages: what a reader sees first, not merely somewhere in the passage."""
    sentences = [p.answer.casefold() for p in passages[:k]]
    return 1.0 if any(a.casefold() in s for a in answers for s in sentences) else 0.0


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile, linearly interpolated (numpy's default method)."""
    if not values:
        return float("nan")
    s = sorted(values)
    pos = (len(s) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


# The reply's relative cut would shorten the list that Hit@10 and nDCG@10 are measured on.
RANKED = AnswerOptions(keep_share=0.0)


def evaluate(
    retriever: Retriever,
    queries: Sequence[Query],
    options: SearchOptions = DEFAULTS,
    on_query: Callable[[Query, list[Passage], float], None] | None = None,
    answers: bool = True,
    answering: AnswerOptions | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Run every query and return the metrics under KEYS (means over the queries they apply to).

    Search is `options` (mode and ranking knobs) with the top CUTOFF kept and no confidence
    floor: the ranking is what is measured. Latency is answer.respond() as `qabot ask` runs
    it, answering sentence included, unless `answers` is False (plain search(): sweeps that
    only need the ranking). `progress` is called with (questions done, total) after each.
    """
    top = replace(options, k=CUTOFF)
    snap = retriever.snapshot()
    retriever.encoder(snap)  # load the model before the clock starts: latency is per question
    sums = dict.fromkeys(KEYS[:8], 0.0)
    judged = with_answers = 0
    times: list[float] = []
    for done, query in enumerate(queries, start=1):
        started = time.perf_counter()
        if answers:  # what a user is shown: the answer layer over the search
            passages = list(respond(retriever, query.question, top, floor=False, as_of=query.date,
                                    answering=answering or RANKED).results)
        else:
            passages = search(retriever, query.question, top, floor=False, as_of=query.date,
                              answers=False)
        times.append((time.perf_counter() - started) * 1000)
        if on_query is not None:
            on_query(query, passages, times[-1])
        if query.gold_docs:
            judged += 1
            ranked = ranked_docs(passages)
            for k in (1, 5, 10):
                sums[f"hit@{k}"] += hit_at(ranked, query.gold_docs, k)
            sums["mrr@10"] += reciprocal_rank(ranked, query.gold_docs)
            sums["ndcg@10"] += ndcg_at(ranked, query.gold_docs)
        if query.answers:
            with_answers += 1
            sums["answer_recall@5"] += answer_found(passages, query.answers)
            sums["answer_sentence@1"] += answer_in_sentence(passages, query.answers, 1)
            sums["answer_sentence@3"] += answer_in_sentence(passages, query.answers, 3)
        if progress is not None:
            progress(done, len(queries))
    out: dict[str, Any] = {}
    for key in KEYS[:8]:
        count = with_answers if key in _ANSWER_KEYS else judged
        out[key] = sums[key] / count if count else None
    out.update(p50_ms=percentile(times, 50), p95_ms=percentile(times, 95), queries=len(queries))
    return out
