"""The answer layer on the news dev set: what each choice is worth, before and after, in one run.

    .venv/bin/python benchmarks/answers.py                 # the feature tables (quiz and chat, both halves)
    .venv/bin/python benchmarks/answers.py --calibrate     # + the confidence floor and the cuts
    .venv/bin/python benchmarks/answers.py --latency       # + warm latency, before vs after
    .venv/bin/python benchmarks/answers.py --phrases       # + how often the marked phrase holds the answer
    .venv/bin/python benchmarks/answers.py --no-table --latency   # the latency alone

The dev set is built as ../shared/README.md says (fetch realtimeqa/realtimeqa_public, then
`../shared/benchmarks/news/build MIRROR /tmp/news-dev`); its index with
`qabot index --seeds /tmp/news-dev/corpus --index /tmp/news-dev-index`. Nothing of it is
committed. Questions are split by quiz week into halves A and B (alternate weeks): settings are
chosen on A and B is reported beside it, so a figure on B was not tuned on.

Metrics: hit@1 and MRR@10 at article level (the reply's results, one per article);
answer_sentence@1 / @3: one of the question's answer strings (case-insensitive) is in the
answering sentence of the first / one of the first three results; reply chars: the median
visible length of the bot's reply with its collapsed quotes closed (what fits a phone screen).
"before" is search() with its old answering sentence (the passage sentence with the highest
cosine to the question, every sentence encoded at question time) and the old three-passage reply.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common import log  # noqa: E402

from qabot import format as fmt  # noqa: E402
from qabot import sentences  # noqa: E402
from qabot.answer import AnswerOptions, respond  # noqa: E402
from qabot.config import (  # noqa: E402
    SearchOptions,  # noqa: E402
    load_settings,
)
from qabot.evaluate import Query, first_hit, ranked_docs, read_queries, reciprocal_rank  # noqa: E402
from qabot.passage import Passage  # noqa: E402
from qabot.reader import Retriever  # noqa: E402
from qabot.retrieve import search  # noqa: E402

DEV = Path("/tmp/news-dev")
UNANSWERABLE = ROOT / "benchmarks" / "unanswerable.jsonl"
KINDS = ROOT / "benchmarks" / "chat_kinds.jsonl"  # yes/no and "what happened" questions
UNANSWERABLE_CHAT = ROOT / "benchmarks" / "unanswerable_chat.jsonl"  # the same kinds, typed as in a chat
CHAT = ROOT / "benchmarks" / "chat_questions.jsonl"
COLS = ("hit@1", "mrr@10", "as@1", "as@3", "chars")


def halves(queries: list[Query]) -> dict[str, list[Query]]:
    """A and B: alternate quiz weeks (by question date), so no week is in both."""
    weeks = sorted({q.date for q in queries if q.date})
    side = {d: "AB"[i % 2] for i, d in enumerate(weeks)}
    return {h: [q for q in queries if q.date and side[q.date] == h] for h in "AB"}


def contains(answers: tuple[str, ...], texts: list[str]) -> float:
    return 1.0 if any(a.casefold() in t.casefold() for a in answers for t in texts) else 0.0


Answerer = Callable[[Query], tuple[list[Passage], int | None]]


def measure(split: dict[str, list[Query]], answer: Answerer) -> dict[str, dict[str, float]]:
    """Mean metrics on each half and on all questions, for one way of answering."""
    per: dict[str, dict[str, float]] = {}
    chars: dict[str, int] = {}
    for q in (q for qs in split.values() for q in qs):
        results, size = answer(q)
        ranked = ranked_docs(results)
        per[q.id] = {
            "hit@1": float(first_hit(ranked, q.gold_docs, 1) is not None),
            "mrr@10": reciprocal_rank(ranked, q.gold_docs),
            "as@1": contains(q.answers, [p.answer for p in results[:1]]),
            "as@3": contains(q.answers, [p.answer for p in results[:3]]),
        }
        if size is not None:
            chars[q.id] = size
    out = {}
    for h, group in {**split, "all": [q for qs in split.values() for q in qs]}.items():
        out[h] = {c: statistics.fmean(per[q.id][c] for q in group) for c in COLS[:4]}
        sizes = [chars[q.id] for q in group if q.id in chars]
        out[h]["chars"] = statistics.median(sizes) if sizes else float("nan")
    return out


def after(retriever: Retriever, tuning: SearchOptions, options: AnswerOptions, bot_floor: float,
          reply_size: bool) -> Answerer:
    """The answer layer as `qabot eval` runs it (k=10), and the bot's reply (k=3) for its size."""
    def run(q: Query) -> tuple[list[Passage], int | None]:
        reply = respond(retriever, q.question, dataclasses.replace(tuning, k=10), floor=False, as_of=q.date,
                        answering=options)
        size = None
        if reply_size:
            bot = respond(retriever, q.question, dataclasses.replace(tuning, k=3, min_score=bot_floor),
                          as_of=q.date, answering=options)
            size = len(fmt.telegram_collapsed("\n".join(fmt.telegram_reply(bot))))
        return list(reply.results), size

    return run


def before(retriever: Retriever, tuning: SearchOptions, bot_floor: float) -> Answerer:
    """search() with its dense answering sentence, and the three-passage reply of before."""

    def run(q: Query) -> tuple[list[Passage], int | None]:
        results = search(retriever, q.question, dataclasses.replace(tuning, k=10), floor=False, as_of=q.date)
        shown = [p for p in results[:3] if p.score >= bot_floor]
        size = len(fmt.telegram_visible("\n\n".join(fmt.telegram_block(p) for p in shown)))
        return results, size

    return run


def variants(base: AnswerOptions) -> dict[str, AnswerOptions]:
    """The shipped options, and each choice switched off on its own."""
    w = base.weights
    out = {"answer layer (all on)": base}
    for name in ("overlap", "kind", "names", "lead", "passage", "novelty", "cosine"):
        out[f"  without {name}"] = dataclasses.replace(base, weights=dataclasses.replace(w, **{name: 0.0}))
    out["  without the floor (always emphasise)"] = dataclasses.replace(
        base, weights=dataclasses.replace(w, floor=float("-inf"), floor_without_cosine=float("-inf"))
    )
    out["  without the cosine floor"] = dataclasses.replace(
        base, weights=dataclasses.replace(w, min_cosine=0.0))
    out["  one passage per article"] = dataclasses.replace(base, passages_per_article=1)
    out["  without time words"] = dataclasses.replace(base, time_bonus=0.0)
    return out


def table(rows: dict[str, dict[str, dict[str, float]]]) -> str:
    """One line per configuration: each metric on A, B and all."""
    head = f"{'':<40}" + "".join(f"{c + ' ' + h:>12}" for c in COLS[:4] for h in ("A", "B", "all"))
    lines = [head + f"{'chars':>8}"]
    for name, by in rows.items():
        cells = "".join(f"{by[h][c]:>12.3f}" for c in COLS if c != "chars" for h in ("A", "B", "all"))
        lines.append(f"{name:<40}{cells}{by['all']['chars']:>8.0f}")
    return "\n".join(lines)


Split = dict[str, list[Query]]


def sweep_time(retriever: Retriever, tuning: SearchOptions, base: AnswerOptions, split: Split) -> None:
    """The time-word bonus: chosen on A, reported on B."""
    print("\nTime words: bonus for articles inside the window the question names")
    print(f"{'bonus':<8}{'hit@1 A':>9}{'mrr A':>9}{'hit@1 B':>9}{'mrr B':>9}")
    for bonus in (0.0, 0.01, 0.02, 0.03, 0.05, 0.08):
        opts = dataclasses.replace(base, time_bonus=bonus)
        r = measure(split, after(retriever, tuning, opts, 0.0, False))
        print(
            f"{bonus:<8}{r['A']['hit@1']:>9.3f}{r['A']['mrr@10']:>9.3f}{r['B']['hit@1']:>9.3f}{r['B']['mrr@10']:>9.3f}"
        )


def calibrate(retriever: Retriever, tuning: SearchOptions, options: AnswerOptions, split: Split,
              chat: Split, bot_floor: float) -> None:
    """Top scores of answerable and unanswerable questions, quiz-style and chat-style; the
    floor's precision and recall at each candidate (chosen on A); and the share of the top score
    gold results keep."""
    as_of = max(q.date for qs in split.values() for q in qs if q.date)

    def top(question: str, when: dt.date | None) -> float:
        """The best relevance (what the floor judges) among the results a reply would show."""
        reply = respond(retriever, question, dataclasses.replace(tuning, k=3), floor=False, as_of=when,
                        answering=options)
        return max((p.relevance for p in reply.results), default=0.0)

    kinds = (("Quiz-style", split, UNANSWERABLE), ("Chat-style", chat, UNANSWERABLE_CHAT))
    for title, answerable, path in kinds:
        off = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        good = {h: [top(q.question, q.date) for q in qs] for h, qs in answerable.items()}
        # Unanswerable questions split the same way: alternate lines; asked on the dev set's last day.
        bad_all = [(o, top(o["question"], as_of)) for o in off]
        bad = {
            "A": [s for i, (_, s) in enumerate(bad_all) if i % 2 == 0],
            "B": [s for i, (_, s) in enumerate(bad_all) if i % 2 == 1],
        }
        small = sum(1 for o, s in bad_all if s == 0.0)
        print(
            f"\n{title} confidence floor: best relevance (hybrid) of {sum(map(len, good.values()))} "
            f"answerable dev questions vs {len(off)} unanswerable ones ({path.name}; {small} answered as "
            "small talk, score 0)"
        )
        for h in "AB":
            print(f"  {h}: answerable {spread(good[h])}\n     unanswerable {spread(bad[h])}")
        print(f"{'floor':<8}" + "".join(f"{'keeps ans ' + h:>14}{'drops unans ' + h:>15}" for h in "AB"))
        for floor in (0.20, 0.22, 0.25, 0.26, 0.28, 0.30, 0.32, 0.35, 0.40):
            cells = ""
            for h in "AB":
                kept = sum(s >= floor for s in good[h]) / len(good[h])
                dropped = sum(s < floor for s in bad[h]) / len(bad[h])
                cells += f"{kept:>14.3f}{dropped:>15.3f}"
            print(f"{floor:<8.2f}{cells}")
        for kind in sorted({o["kind"] for o in off}):
            scores = [s for o, s in bad_all if o["kind"] == kind]
            print(f"  {kind}: n={len(scores)} median {statistics.median(scores):.3f} max {max(scores):.3f}")
    cosine_floor(retriever, tuning, options, as_of, kinds, bot_floor)
    print("\nRelative cut: score of results 2-3 as a share of the first, gold vs not gold (A)")
    gold_shares: list[float] = []
    other_shares: list[float] = []
    for q in split["A"]:
        reply = respond(retriever, q.question, dataclasses.replace(tuning, k=3), floor=False, as_of=q.date,
                        answering=options)
        if len(reply.results) < 2 or reply.results[0].score <= 0:
            continue
        for p in reply.results[1:]:
            share = p.score / reply.results[0].score
            (gold_shares if p.doc_id.removesuffix(".txt") in q.gold_docs else other_shares).append(share)
    for name, shares in (("gold", gold_shares), ("not gold", other_shares)):
        if shares:
            print(f"  {name}: {spread(shares)}")


def cosine_floor(retriever: Retriever, tuning: SearchOptions, options: AnswerOptions, as_of: dt.date,
                 kinds: tuple[tuple[str, Split, Path], ...], bot_floor: float) -> None:
    """Weights.min_cosine: at each candidate, answer_sentence@1 of the answerable questions and
    the share of unanswerable ones whose reply (the bot's: k=3, its floor) still quotes a
    sentence, on each half (chosen on A: the highest that moves no right sentence there)."""
    bot = dataclasses.replace(tuning, k=3, min_score=bot_floor)
    print("\nSentence cosine floor (min_cosine): as@1 of answerable questions, share of unanswerable "
          "ones still quoting a sentence")
    print(f"{'':<12}{'min_cosine':>10}" + "".join(f"{'as@1 ' + h:>10}{'quoted ' + h:>10}" for h in "AB"))
    for title, answerable, path in kinds:
        off = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        for least in (0.0, 0.30, 0.35, 0.40):
            weights = dataclasses.replace(options.weights, min_cosine=least)
            opts = dataclasses.replace(options, weights=weights)
            right = measure(answerable, after(retriever, tuning, opts, bot_floor, False))
            quoted = {"A": [0, 0], "B": [0, 0]}
            for i, o in enumerate(off):
                reply = respond(retriever, o["question"], bot, as_of=as_of, answering=opts)
                half = quoted["AB"[i % 2]]
                half[0] += reply.answer is not None
                half[1] += 1
            cells = "".join(f"{right[h]['as@1']:>10.3f}{quoted[h][0] / quoted[h][1]:>10.3f}" for h in "AB")
            print(f"{title:<12}{least:>10.2f}{cells}")


# The phrase's kinds as the reply marks them: "how many/much/old/long" share one row.
PHRASE_KINDS = {sentences.TIME: "date (when)", sentences.NUMBER: "amount, age, span (how …)",
                sentences.DURATION: "amount, age, span (how …)", sentences.PERSON: "name (who)",
                sentences.PLACE: "place (where, which country…)"}


def phrases(retriever: Retriever, tuning: SearchOptions, options: AnswerOptions,
            sets: dict[str, Split]) -> None:
    """The answering phrase where the first result's sentence is right: how often one is marked,
    and how often it holds an answer string (or lies inside one: "Lee" of "Minjee Lee")."""
    print("\nThe answering phrase, where the first result's sentence holds an answer string (k=10)")
    print(f"{'':<44}" + "".join(f"{t + ' ' + h:>22}" for t in sets for h in "AB"))
    counts: dict[tuple[str, str, str], list[int]] = {}
    for title, split in sets.items():
        for h, qs in split.items():
            for q in qs:
                label = PHRASE_KINDS.get(sentences.question_kind(q.question))
                reply = respond(retriever, q.question, dataclasses.replace(tuning, k=10), floor=False,
                                as_of=q.date, answering=options)
                if label is None or not reply.results or not contains(q.answers, [reply.results[0].answer]):
                    continue
                said = reply.results[0].phrase.casefold()
                holds = bool(said) and any(a.casefold() in said or said in a.casefold() for a in q.answers)
                cell = counts.setdefault((label, title, h), [0, 0, 0])
                cell[0] += 1
                cell[1] += bool(said)
                cell[2] += holds
    print(f"{'(right sentences · marked · holds the answer)':<44}")
    for label in dict.fromkeys(PHRASE_KINDS.values()):
        cells = (counts.get((label, t, h), [0, 0, 0]) for t in sets for h in "AB")
        print(f"{label:<44}" + "".join(f"{f'{n} · {m} · {k}':>22}" for n, m, k in cells))


def spread(values: list[float]) -> str:
    """n, min, p10, median, p90 and max of some scores, on one line."""
    s = sorted(values)
    return (
        f"n={len(s)} min {s[0]:.3f} p10 {s[len(s) // 10]:.3f} median {statistics.median(s):.3f} "
        f"p90 {s[int(len(s) * 0.9)]:.3f} max {s[-1]:.3f}"
    )


def latency(
    retriever: Retriever, tuning: SearchOptions, options: AnswerOptions, queries: list[Query]
) -> None:
    """Warm p50/p95 of one question, k=5: before (search + dense answering sentence) vs after.
    The three paths take turns question by question, so a load that comes and goes on the
    machine falls on all of them alike."""
    paths: dict[str, Callable[[Query], object]] = {
        "search only (no answering sentence)": lambda q: search(
            retriever, q.question, dataclasses.replace(tuning, k=5), floor=False, as_of=q.date, answers=False
        ),
        "before: search + dense answering sentence": lambda q: search(
            retriever, q.question, dataclasses.replace(tuning, k=5), floor=False, as_of=q.date
        ),
        "after: answer layer (respond)": lambda q: respond(retriever, q.question,
                                                           dataclasses.replace(tuning, k=5), floor=False,
                                                           as_of=q.date, answering=options),
    }
    for q in queries:  # warm every cache first (a running bot has them warm)
        respond(retriever, q.question, dataclasses.replace(tuning, k=5), floor=False, as_of=q.date,
                answering=options)
    times: dict[str, list[float]] = {name: [] for name in paths}
    for q in queries:
        for name, run in paths.items():
            started = time.perf_counter()
            run(q)
            times[name].append((time.perf_counter() - started) * 1000)
    print("\nWarm latency per question, k=5, in process (the paths taking turns)")
    for name, ts in times.items():
        s = sorted(ts)
        print(f"  {name:<44} p50 {statistics.median(s):6.1f} ms   p95 {s[int(len(s) * 0.95)]:6.1f} ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dev", type=Path, default=DEV, help="the built dev set [/tmp/news-dev]")
    ap.add_argument("--index", type=Path, default=Path("/tmp/news-dev-index"), help="its index")
    ap.add_argument("--calibrate", action="store_true", help="the floor and the relative cuts")
    ap.add_argument("--latency", action="store_true", help="warm latency, before vs after")
    ap.add_argument("--time", action="store_true", help="the time-word bonus sweep")
    ap.add_argument("--phrases", action="store_true", help="how often the answering phrase holds the answer")
    ap.add_argument("--no-table", action="store_true", help="skip the feature table")
    ap.add_argument("--kinds", action="store_true",
                    help="the answer layer on benchmarks/chat_kinds.jsonl (yes/no, what happened)")
    args = ap.parse_args()
    queries, problems = read_queries(args.dev / "queries.jsonl")
    if problems or not queries:
        raise SystemExit(f"bad dev queries: {problems[:3]}")
    settings = load_settings(None)
    tuning = settings.search
    retriever = Retriever(args.index)
    retriever.encoder(retriever.snapshot())
    split = halves(queries)
    log(f"{len(queries)} questions: A {len(split['A'])}, B {len(split['B'])}")
    base = AnswerOptions()
    print(
        f"News dev set: {len(queries)} questions (A {len(split['A'])}, B {len(split['B'])}), "
        f"index {args.index}"
    )
    # Every choice on both kinds of question: the quiz's long ones, and the short lowercase ones
    # people type in a chat (benchmarks/chat_questions.jsonl, split the same way).
    chat, problems = read_queries(CHAT)
    if problems:
        raise SystemExit(f"bad chat questions: {problems[:3]}")
    chat_split = halves(chat)
    if not args.no_table:
        for title, sets in (("Quiz questions", split), ("Chat questions", chat_split)):
            print(f"\n{title}: {sum(map(len, sets.values()))} (A {len(sets['A'])}, B {len(sets['B'])})")
            rows: dict[str, dict[str, dict[str, float]]] = {}
            old = before(retriever, tuning, settings.bot.min_score)
            rows["before (search + dense sentence)"] = measure(sets, old)
            for name, opts in variants(base).items():
                log(f"{title}: {name.strip()}")
                size = name == "answer layer (all on)"
                rows[name] = measure(sets, after(retriever, tuning, opts, settings.bot.min_score, size))
            print(table(rows))
    if args.time:
        sweep_time(retriever, tuning, base, split)
    if args.calibrate:
        calibrate(retriever, tuning, base, split, chat_split, settings.bot.min_score)
    if args.phrases:
        phrases(retriever, tuning, base, {"quiz": split, "chat": chat_split})
    if args.kinds:
        kinds, problems = read_queries(KINDS)
        if problems:
            raise SystemExit(f"bad questions in {KINDS.name}: {problems[:3]}")
        kind_of = {o["id"]: o["kind"] for o in map(json.loads, KINDS.read_text().splitlines()) if o}
        by_kind = {k: [q for q in kinds if kind_of[q.id] == k] for k in sorted(set(kind_of.values()))}
        print(f"\n{KINDS.name}: kinds of chat question the dev sets lack, written after the weights "
              "were chosen; two yes/no rules were tried on them and not taken")
        print(f"{'':<24}" + "".join(f"{c:>9}" for c in COLS[:4]))
        answerer = after(retriever, tuning, base, settings.bot.min_score, False)
        for k, qs in by_kind.items():
            got = measure({"A": qs}, answerer)["A"]
            print(f"{k + f' ({len(qs)})':<24}" + "".join(f"{got[c]:>9.3f}" for c in COLS[:4]))
    if args.latency:
        latency(retriever, tuning, base, queries)


if __name__ == "__main__":
    main()
