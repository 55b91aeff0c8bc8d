"""Check the chat-style dev questions against the news dev corpus, and count them.

    python3 benchmarks/check_chat_questions.py /tmp/news-dev/corpus
    python3 benchmarks/check_chat_questions.py /tmp/news-dev/corpus --queries /tmp/news-dev/queries.jsonl

Standard library only. Every line must parse and carry the fields of a query line plus "source"
("rewrite" or "new"), "kind" and "of"; ids are unique; every gold doc is a file of the corpus; every
question is 3-8 words and lowercase; every answer of a "new" line occurs (case-insensitively) in its
gold article, and the question is asked no earlier than the article's date. Rewrites keep their
quiz line's answers, and those are paraphrases about one time in six, so for them the share found
in a gold article is only reported. With --queries, each quiz question must be rewritten exactly
once, keeping its gold docs, answers and date, and no rewrite may share a run of five words with
the quiz wording. Exits 1 if anything is wrong.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # devcorpus.py, when loaded from its file
from devcorpus import Corpus, fold, read_jsonl  # noqa: E402

# (the last two: benchmarks/chat_kinds.jsonl's yes/no and "what happened" questions)
KINDS = ("who", "when", "where", "howmany", "what", "why", "yesno", "happened")
SOURCES = ("rewrite", "new")
MIN_WORDS, MAX_WORDS = 3, 8
COPIED_RUN = 5  # a rewrite sharing this many consecutive words with the quiz question is a copy
DEFAULT_FILE = Path(__file__).resolve().parent / "chat_questions.jsonl"


def words(text: str) -> list[str]:
    """The words of a question, without punctuation, for the copy check."""
    return re.findall(r"[a-z0-9$%.'-]+", fold(text).replace("'", ""))


def shares_run(a: str, b: str, n: int = COPIED_RUN) -> bool:
    """Whether a and b have n consecutive words in common."""
    wa, wb = words(a), words(b)
    runs = {tuple(wb[i:i + n]) for i in range(len(wb) - n + 1)}
    return any(tuple(wa[i:i + n]) in runs for i in range(len(wa) - n + 1))


def line_problems(obj: Any) -> list[str]:
    """What is wrong with one decoded line (empty if nothing)."""
    if not isinstance(obj, dict):
        return ["not a JSON object"]
    out = []
    question = obj.get("question")
    if not isinstance(question, str) or not question.strip():
        out.append('"question" is missing or empty')
    else:
        n = len(question.split())
        if not MIN_WORDS <= n <= MAX_WORDS:
            out.append(f"question has {n} words, not {MIN_WORDS}-{MAX_WORDS}: {question!r}")
        if question != question.lower():
            out.append(f"question is not lowercase: {question!r}")
    for name in ("gold_docs", "answers"):
        value = obj.get(name)
        if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
            out.append(f'"{name}" must be a non-empty list of strings')
    date = obj.get("question_date")
    try:
        dt.date.fromisoformat(date if isinstance(date, str) else "")
    except ValueError:
        out.append(f'"question_date" is not YYYY-MM-DD: {date!r}')
    if obj.get("source") not in SOURCES:
        out.append(f'"source" must be one of {SOURCES}, not {obj.get("source")!r}')
    if obj.get("kind") not in KINDS:
        out.append(f'"kind" must be one of {KINDS}, not {obj.get("kind")!r}')
    if obj.get("source") == "rewrite" and not isinstance(obj.get("of"), str):
        out.append('a rewrite needs "of": the quiz question id')
    if obj.get("source") == "new" and obj.get("of") is not None:
        out.append('a new question has "of": null')
    return out


def main(argv: list[str] | None = None) -> int:
    """Check the file, print the counts; 0 if every line is sound."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpus", type=Path, help="the dev corpus folder (<stem>.txt files)")
    parser.add_argument("--file", type=Path, default=DEFAULT_FILE,
                        help="the questions (default: %(default)s)")
    parser.add_argument("--queries", type=Path, help="the quiz queries.jsonl the rewrites come from")
    args = parser.parse_args(argv)

    corpus = Corpus(args.corpus)
    decoded, problems = read_jsonl(args.file)
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for n, obj in decoded:
        found = line_problems(obj)
        problems += [f"line {n}: {p}" for p in found]
        if found:
            continue
        qid = str(obj.get("id", ""))
        if not qid or qid in seen:
            problems.append(f"line {n}: id {qid!r} is missing or repeated")
        seen.add(qid)
        missing = [d for d in obj["gold_docs"] if corpus.text(d) is None]
        problems += [f"line {n}: gold doc {d} is not in {args.corpus}" for d in missing]
        if obj["source"] == "new" and not missing:
            # Asked the day the article came out or later, never before it (" date YYYY-MM-DD ...").
            published = max(corpus.date(d) for d in obj["gold_docs"])
            if obj["question_date"] < published:
                problems.append(f"line {n}: asked on {obj['question_date']}, before its article"
                                f" ({published})")
            for answer in obj["answers"]:
                if not corpus.has(obj["gold_docs"], answer):
                    problems.append(f"line {n}: answer {answer!r} is not in its gold article")
        rows.append(obj)

    if args.queries:
        quiz = {q["id"]: q for q in map(json.loads, args.queries.read_text(encoding="utf-8").splitlines())}
        of = Counter(r["of"] for r in rows if r["source"] == "rewrite")
        problems += [f"quiz question {q} is not rewritten" for q in quiz if of[q] == 0]
        problems += [f"quiz question {q} is rewritten {c} times" for q, c in of.items() if c > 1]
        for r in rows:
            q = quiz.get(r["of"]) if r["source"] == "rewrite" else None
            if r["source"] == "rewrite" and q is None:
                problems.append(f"{r['id']}: no quiz question {r['of']!r}")
            elif q is not None:
                for field in ("gold_docs", "answers", "question_date"):
                    if r[field] != q[field]:
                        problems.append(f"{r['id']}: {field} differs from quiz question {q['id']}")
                if shares_run(r["question"], q["question"]):
                    problems.append(f"{r['id']}: copies {COPIED_RUN}+ words of the quiz wording")

    print(f"{args.file.name}: {len(rows)} questions, {len(problems)} problems")
    for p in problems:
        print("  " + p)
    print(f"\n{'':8}" + "".join(f"{k:>9}" for k in (*KINDS, "all")))
    for source in (*SOURCES, "all"):
        part = [r for r in rows if source in ("all", r["source"])]
        count = Counter(r["kind"] for r in part)
        print(f"{source:8}" + "".join(f"{count[k]:>9}" for k in KINDS) + f"{len(part):>9}")
    questions_marked = sum(r["question"].rstrip().endswith("?") for r in rows)
    print(f"\nending in a question mark: {questions_marked}/{len(rows)}")
    lengths = Counter(len(r["question"].split()) for r in rows)
    print("words per question: " + ", ".join(f"{k}: {lengths[k]}" for k in sorted(lengths)))
    for source in SOURCES:
        part = [r for r in rows if r["source"] == source]
        hit = sum(any(corpus.has(r["gold_docs"], a) for a in r["answers"]) for r in part)
        docs = {d for r in part for d in r["gold_docs"]}
        dates = sorted(r["question_date"] for r in part)
        span = f"{dates[0]}..{dates[-1]}" if dates else "-"
        print(f"{source}: an answer string occurs in a gold article for {hit}/{len(part)}"
              f" ({len(docs)} gold articles, dates {span})")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
