"""Check the scripted-chat benchmark set against the news dev corpus, and count it.

    python3 benchmarks/check_chat_script.py /tmp/news-dev/corpus

Standard library only. Each line of chat_script.jsonl is one of three kinds:

  followup      a first question, then a follow-up that leans on it ("how much did she get")
  topic_change  a first question, then an unrelated question typed the same way
  latest        a "what's the latest on ..." / "who is ... now" question, whose gold is the
                newest article that answers it and whose "older" are earlier ones on the subject

Every line must parse and carry its kind's fields; ids are unique; every file stem named in
first_gold, gold or older is an article of the corpus, dated no later than the question; every
message is lowercase and 2-10 words. For followup and latest lines (and topic_change lines with
gold), every answer occurs (case-insensitively) in a gold article. A follow-up's in_previous must
say whether its answer is in one of the first question's gold articles, and a topic change shares
no gold article with its first question. For latest lines every gold article is at least as new
as every older one. Exits 1 if anything is wrong.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # devcorpus.py, when loaded from its file
from devcorpus import Corpus, read_jsonl  # noqa: E402

KINDS = ("followup", "topic_change", "latest")
FIELDS = {
    "followup": {"id", "kind", "first", "first_gold", "followup", "gold", "answers", "question_date",
                 "in_previous"},
    "topic_change": {"id", "kind", "first", "first_gold", "next", "gold", "answers", "question_date"},
    "latest": {"id", "kind", "question", "gold", "older", "answers", "question_date"},
}
MESSAGES = {"followup": ("first", "followup"), "topic_change": ("first", "next"), "latest": ("question",)}
STEMS = {"followup": ("first_gold", "gold"), "topic_change": ("first_gold", "gold"),
         "latest": ("gold", "older")}
MIN_WORDS, MAX_WORDS = 2, 10
DEFAULT_FILE = Path(__file__).resolve().parent / "chat_script.jsonl"


def is_strings(value: Any, empty: bool = False) -> bool:
    """Whether value is a list of non-empty strings (and non-empty itself unless `empty`)."""
    return isinstance(value, list) and (empty or bool(value)) and all(isinstance(v, str) and v for v in value)


def line_problems(obj: Any) -> list[str]:
    """What is wrong with the form of one decoded line (empty if nothing); the corpus is not read."""
    if not isinstance(obj, dict):
        return ["not a JSON object"]
    kind = obj.get("kind")
    if kind not in KINDS:
        return [f'"kind" must be one of {KINDS}, not {kind!r}']
    out = []
    if set(obj) != FIELDS[kind]:
        out.append(f"fields differ for {kind}: missing {sorted(FIELDS[kind] - set(obj))}, "
                   f"extra {sorted(set(obj) - FIELDS[kind])}")
    if not isinstance(obj.get("id"), str) or not obj.get("id"):
        out.append('"id" is missing or empty')
    for name in MESSAGES[kind]:
        text = obj.get(name)
        if not isinstance(text, str) or not text.strip():
            out.append(f'"{name}" is missing or empty')
            continue
        n = len(text.split())
        if not MIN_WORDS <= n <= MAX_WORDS:
            out.append(f"{name} has {n} words, not {MIN_WORDS}-{MAX_WORDS}: {text!r}")
        if text != text.lower():
            out.append(f"{name} is not lowercase: {text!r}")
    for name in STEMS[kind]:
        # A topic change may move to a subject the corpus does not cover: its gold may be empty.
        if not is_strings(obj.get(name), empty=kind == "topic_change" and name == "gold"):
            out.append(f'"{name}" must be a non-empty list of file stems')
    if not is_strings(obj.get("answers"), empty=kind == "topic_change"):
        out.append('"answers" must be a non-empty list of strings')
    elif kind == "topic_change" and bool(obj.get("gold")) != bool(obj.get("answers")):
        out.append("a topic change has answers exactly when it has gold articles")
    if kind == "followup" and not isinstance(obj.get("in_previous"), bool):
        out.append('"in_previous" must be true or false')
    lists = [obj.get(name) or [] for name in STEMS[kind]]
    if all(is_strings(v, empty=True) for v in lists) and set(lists[0]) & set(lists[1]):
        if kind == "latest":
            out.append("an article is both gold and older")
        if kind == "topic_change":
            out.append("a topic change shares a gold article with its first question")
    date = obj.get("question_date")
    try:
        dt.date.fromisoformat(date if isinstance(date, str) else "")
    except ValueError:
        out.append(f'"question_date" is not YYYY-MM-DD: {date!r}')
    return out


def corpus_problems(obj: dict[str, Any], corpus: Corpus) -> list[str]:
    """What is wrong with a well-formed line against the corpus (empty if nothing)."""
    kind = obj["kind"]
    stems = [s for name in STEMS[kind] for s in obj[name]]
    missing = [s for s in stems if corpus.text(s) is None]
    if missing:
        return [f"{s} is not in {corpus.folder}" for s in missing]
    out = [f"asked on {obj['question_date']}, before its article {s} ({corpus.date(s)})"
           for s in stems if corpus.date(s) > obj["question_date"]]
    out += [f"answer {a!r} is not in a gold article"
            for a in obj["answers"] if not corpus.has(obj["gold"], a)]
    if kind == "followup":
        in_first = any(corpus.has(obj["first_gold"], a) for a in obj["answers"])
        if obj["in_previous"] != in_first:
            out.append(f"in_previous is {obj['in_previous']}, but an answer is "
                       f"{'' if in_first else 'not '}in a first_gold article")
        if in_first and not set(obj["gold"]) & set(obj["first_gold"]):
            out.append("the answer is in a first_gold article that is not in gold")
    if kind == "latest":
        newest_older = max(corpus.date(s) for s in obj["older"])
        out += [f"gold {s} ({corpus.date(s)}) is older than an older article ({newest_older})"
                for s in obj["gold"] if corpus.date(s) < newest_older]
    return out


def main(argv: list[str] | None = None) -> int:
    """Check the file, print the counts; 0 if every line is sound."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpus", type=Path, help="the dev corpus folder (<stem>.txt files)")
    parser.add_argument("--file", type=Path, default=DEFAULT_FILE,
                        help="the scripted chat (default: %(default)s)")
    args = parser.parse_args(argv)
    corpus = Corpus(args.corpus)

    decoded, problems = read_jsonl(args.file)
    lines = len(decoded) + len(problems)  # so far the problems are lines that are not JSON
    rows: list[dict[str, Any]] = []
    ids: Counter[str] = Counter()
    for n, obj in decoded:
        qid = obj.get("id") if isinstance(obj, dict) else None
        ids[str(qid)] += 1
        found = line_problems(obj)
        if ids[str(qid)] > 1:
            found.append(f"id {qid!r} is repeated")
        if not found:
            found = corpus_problems(obj, corpus)
            rows.append(obj)  # counted below even if its answers are wrong: its form is sound
        problems += [f"line {n} ({qid}): {p}" for p in found]

    print(f"{args.file.name}: {lines} lines, {len(problems)} problems")
    for p in problems:
        print("  " + p)
    kinds = Counter(r["kind"] for r in rows)
    print("\nby kind: " + ", ".join(f"{k} {kinds[k]}" for k in KINDS))
    follow = [r for r in rows if r["kind"] == "followup"]
    print(f"follow-ups with the answer in the first question's gold articles (in_previous): "
          f"true {sum(r['in_previous'] for r in follow)}, false {sum(not r['in_previous'] for r in follow)}")
    changes = [r for r in rows if r["kind"] == "topic_change"]
    short = sum(3 <= len(r["next"].split()) <= 5 for r in changes)
    print(f"topic changes: {short}/{len(changes)} with a 3-5 word next question, "
          f"{sum(not r['gold'] for r in changes)} not covered by the corpus")
    latest = [r for r in rows if r["kind"] == "latest"]
    print(f"latest: {sum(len(r['older']) for r in latest)} older articles behind "
          f"{sum(len(r['gold']) for r in latest)} gold ones")
    messages = [r[name] for r in rows for name in MESSAGES[r["kind"]]]
    lengths = Counter(len(m.split()) for m in messages)
    marked = sum(m.rstrip().endswith("?") for m in messages)
    print(f"messages: {len(messages)}, ending in a question mark {marked}; words: "
          + ", ".join(f"{k}: {lengths[k]}" for k in sorted(lengths)))
    dates = sorted(r["question_date"] for r in rows)
    if dates:
        print(f"question dates {dates[0]}..{dates[-1]}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
