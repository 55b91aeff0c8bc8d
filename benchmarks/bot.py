"""Benchmark `qabot bot` against FakeTelegram on loopback, and calibrate its confidence floor.

Run from the repository root:

    .venv/bin/python benchmarks/bot.py [--questions 30] [--burst 50] [--users 20] [--json]
    .venv/bin/python benchmarks/bot.py --calibrate [--json]

The bot is the real CLI, `qabot bot`, in its own process (as in production, the Bot API server is
not in its process), pointed at tests/fake_telegram.py through QABOT_TELEGRAM_API_URL. The index
is the shipped seed + tests/fixtures/seeds, built first with `qabot index` in a temporary folder
(or --seeds/--index to use your own). Times are taken by the fake server: when an update was
injected (it becomes available to getUpdates at once) and when sendMessage arrived.

Measured:

 1. start-up: process start to the first getUpdates (index and model loaded, command menu set)
 2. latency: --questions questions one at a time, each from another user, after 3 warm-up
    questions; update available → the answer's sendMessage, median / p95 / max
    (target: median < 150 ms). Split into update → bot's getUpdates returned it, and the rest.
 3. burst: --burst questions from --users users (at most 3 each, under the 10-a-minute limit),
    all injected at once; every one must be answered exactly once; time from the first
    injection to the last answer, and per-question latency. Telegram's overall limit (30
    messages a second, which AIORateLimiter keeps) is the floor under that time.
 4. shutdown: SIGTERM → exit status and seconds.

--calibrate prints the data behind `[bot] min_score` instead: the top hybrid score `search()`
gives each of ON_TOPIC and OFF_TOPIC below on shipped + fixture seeds, and of the questions in
tests/fixtures/retrieval/queries.jsonl on their corpus; the floor is the middle of the gap
between the best off-topic and the worst on-topic score.

Progress goes to stderr, the report to stdout (--json: one JSON object).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fake_telegram import FakeTelegram  # noqa: E402

LATENCY_TARGET_MS = 150.0
SHIPPED = ROOT / "seeds"
FIXTURES = ROOT / "tests" / "fixtures" / "seeds"
RETRIEVAL = ROOT / "tests" / "fixtures" / "retrieval"

# Questions the shipped seed + fixture articles answer (phrased plainly, by keywords, and by
# paraphrase with few shared words), and questions they don't cover at all.
ON_TOPIC = [
    "Which road did Azerbaijan propose to help Armenian residents in Karabakh?",
    "What did Bayramov tell Bono?", "Who is Louis Bono?",
    "What did Azerbaijan say about Armenian troops?", "What is the Lachin road checkpoint?",
    "How long have Azerbaijan and Armenia been in conflict?", "Aghdam-Khankendi road",
    "peace talks between Baku and Yerevan", "Did the ECB cut interest rates in January?",
    "What is the euro zone inflation rate?", "What did Christine Lagarde say about rate cuts?",
    "When do analysts expect the first rate cut?", "central bank borrowing costs Europe",
    "Who landed on the Moon in February 2024?",
    "What happened to the Odysseus lander after touchdown?",
    "When was the last American Moon landing before Odysseus?", "Intuitive Machines lunar lander",
    "private spacecraft near the lunar south pole", "Which volcano erupted in Iceland?",
    "How many residents of Grindavik were evacuated?", "Is the Blue Lagoon open?",
    "How long was the fissure?", "lava flowing toward a fishing town", "Who won the FA Cup final?",
    "Who scored for Manchester United at Wembley?", "What was the score of the FA Cup final?",
    "How many times has United won the FA Cup?", "Who pulled one back for Manchester City?",
    "Is the volcano near the town still dangerous for people living there?",
    "Did the spacecraft fall over?",
    "what did the foreign minister discuss with the american diplomat",
    "Why are prices in Europe rising more slowly now?", "football cup match result",
    "earthquake activity before the eruption",
]
OFF_TOPIC = [
    "Who won the 2019 Nobel Prize in Literature?", "How do I bake sourdough bread?",
    "What is the capital of Australia?", "How do I reset my router password?",
    "What is the best way to learn Python?", "Recommend a good science fiction novel",
    "How tall is Mount Everest?", "What's the weather like tomorrow?", "hello", "thanks!",
    "Who are you?", "What time is it?", "How many calories are in an apple?",
    "Who painted the Mona Lisa?", "What is the speed of light?", "How do vaccines work?",
    "Translate 'good morning' into Spanish", "What are the symptoms of the flu?",
    "Who is the president of France?", "How do I cook rice?", "What is the meaning of life?",
    "Tell me a joke", "What is machine learning?", "Best pizza in New York",
    "How does photosynthesis work?", "When did World War II end?",
    "How to fix a flat bicycle tyre", "What is the population of Brazil?", "Who wrote Hamlet?",
    "Can dogs eat chocolate?", "What is bitcoin?", "How do I tie a tie?",
    "What is the tallest building in the world?", "asdfghjkl",
]


def log(msg: str) -> None:
    """Progress on stderr, so stdout holds only the report."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), linear interpolation between closest ranks."""
    data = sorted(values)
    pos = (len(data) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def summary_ms(seconds: Sequence[float]) -> dict[str, float]:
    """median / p95 / max / min of durations, in milliseconds."""
    ms = [s * 1000 for s in seconds]
    return {"median_ms": statistics.median(ms), "p95_ms": percentile(ms, 95), "max_ms": max(ms),
            "min_ms": min(ms), "n": len(ms)}


def clean_env(**extra: str) -> dict[str, str]:
    """This environment minus QABOT_* and Telegram tokens, plus `extra`."""
    drop = ("QABOT_", "TELEGRAM_BOT_TOKEN")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    return {**env, "HF_HUB_OFFLINE": "1", **extra}


def qabot() -> str:
    exe = Path(sys.executable).with_name("qabot")
    if not exe.is_file():
        raise SystemExit(f"no qabot next to {sys.executable}; run with .venv/bin/python")
    return str(exe)


def build_corpus(root: Path) -> Path:
    """The shipped seed and the fixture articles, copied into root/seeds."""
    seeds = root / "seeds"
    shutil.copytree(SHIPPED, seeds)
    shutil.copytree(FIXTURES, seeds, dirs_exist_ok=True)
    return seeds


def index(seeds: Path, index_dir: Path) -> str:
    """`qabot index` (only what changed); its summary line."""
    proc = subprocess.run([qabot(), "index", "-q", "--seeds", str(seeds), "--index", str(index_dir)],
                          env=clean_env(), capture_output=True, text=True, cwd=index_dir.parent)
    if proc.returncode != 0:
        raise SystemExit(f"qabot index failed:\n{proc.stderr}")
    return proc.stdout.strip()


# ---------------------------------------------------------------- the bot against the fake


def latency_of(tg: FakeTelegram, update_id: int) -> tuple[float, float]:
    """(update → sendMessage, update → getUpdates delivered it) in seconds."""
    [answer] = [m for m in tg.sent if m["reply_to_update_id"] == update_id][:1]
    injected = tg.update_times[update_id]
    return answer["time"] - injected, tg.delivery_times[update_id] - injected


def wait_answers(tg: FakeTelegram, update_ids: Sequence[int], timeout: float) -> None:
    """Block until every update has an answer quoting it."""
    deadline = time.monotonic() + timeout
    want = set(update_ids)
    while time.monotonic() < deadline:
        if want <= {m["reply_to_update_id"] for m in tg.sent}:
            return
        time.sleep(0.005)
    got = want & {m["reply_to_update_id"] for m in tg.sent}
    raise SystemExit(f"only {len(got)} of {len(want)} questions were answered within {timeout} s")


def bench_bot(seeds: Path, index_dir: Path, questions: int, burst: int, users: int) -> dict[str, Any]:
    """Start `qabot bot`, measure latency one question at a time, then a burst, then SIGTERM."""
    pool = ON_TOPIC + OFF_TOPIC
    with FakeTelegram() as tg:
        env = clean_env(QABOT_TELEGRAM_TOKEN=tg.token, QABOT_TELEGRAM_API_URL=tg.base_url)
        started = time.perf_counter()
        proc = subprocess.Popen([qabot(), "bot", "--seeds", str(seeds), "--index", str(index_dir)],
                                env=env, cwd=index_dir.parent, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        try:
            tg.wait_for_call("getUpdates", timeout=120)
            startup = time.perf_counter() - started
            log(f"2. latency: {questions} questions one at a time (after 3 warm-up) …")
            user = iter(range(1_000, 10_000_000))
            for q in pool[:3]:
                wait_answers(tg, [tg.send_text(q, user_id=next(user))], 30)
            sequential = []
            for i in range(questions):
                update = tg.send_text(pool[i % len(pool)], user_id=next(user))
                wait_answers(tg, [update], 30)
                sequential.append(update)
                time.sleep(0.05)  # let the bot go back to its long poll
            times = [latency_of(tg, u) for u in sequential]
            log(f"3. burst: {burst} questions from {users} users at once …")
            first = time.perf_counter()
            wave = [tg.send_text(pool[i % len(pool)], user_id=100 + i % users) for i in range(burst)]
            wait_answers(tg, wave, 120)
            answers = [m for m in tg.sent if m["reply_to_update_id"] in set(wave)]
            last = max(m["time"] for m in answers)
            lost_or_refused = [m["text"] for m in answers if m["text"][:2] not in ("1.", "No")]
            burst_times = [latency_of(tg, u)[0] for u in wave]
            log("4. SIGTERM …")
            stopping = time.perf_counter()
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=60)
            stop_s = time.perf_counter() - stopping
        finally:
            if proc.poll() is None:
                proc.kill()
    if proc.returncode != 0:
        raise SystemExit(f"qabot bot exited with {proc.returncode}:\n{err}")
    return {
        "startup_s": startup,
        "latency": {**summary_ms([t for t, _ in times]),
                    "delivery_median_ms": statistics.median(d * 1000 for _, d in times),
                    "target_ms": LATENCY_TARGET_MS,
                    "passed": statistics.median(t for t, _ in times) * 1000 < LATENCY_TARGET_MS},
        "burst": {"questions": burst, "users": users, "answered": len({m["reply_to_update_id"]
                                                                        for m in answers}),
                  "messages": len(answers), "not_answers": len(lost_or_refused),
                  "last_answer_s": last - first, **summary_ms(burst_times)},
        "shutdown": {"exit_status": proc.returncode, "seconds": stop_s},
    }


# ---------------------------------------------------------------- calibration


def top_scores(
    index_dir: Path, questions: Sequence[str], as_of: Sequence[str | None] | None = None
) -> list[float]:
    """The best hybrid score search() gives each question (0 when it returns nothing)."""
    from qabot.config import SearchOptions
    from qabot.reader import Retriever
    from qabot.retrieve import search

    retriever = Retriever(index_dir)
    out = []
    for i, q in enumerate(questions):
        day = as_of[i] if as_of else None
        hits = search(retriever, q, SearchOptions(k=1), floor=False, answers=False,
                      as_of=dt.date.fromisoformat(day) if day else None)
        out.append(hits[0].score if hits else 0.0)
    return out


def calibrate(workdir: Path, seeds: Path, index_dir: Path) -> dict[str, Any]:
    """Top scores of answerable and off-topic questions on two news corpora; the floor between."""
    log("calibrating on shipped seed + fixtures …")
    on, off = top_scores(index_dir, ON_TOPIC), top_scores(index_dir, OFF_TOPIC)
    log("… and on tests/fixtures/retrieval …")
    r_index = workdir / "retrieval-index"
    shutil.copytree(index_dir, r_index, ignore=shutil.ignore_patterns("gen-*", "manifest.json"))
    index(RETRIEVAL / "seeds", r_index)  # reuses the exported encoder: no torch
    queries = [
        json.loads(line) for line in (RETRIEVAL / "queries.jsonl").read_text().splitlines() if line.strip()
    ]
    scores = top_scores(r_index, [q["question"] for q in queries], [q.get("date") for q in queries])
    r_on = [s for s, q in zip(scores, queries, strict=True) if q["gold_docs"]]
    r_off = [s for s, q in zip(scores, queries, strict=True) if not q["gold_docs"]]
    answerable, unanswerable = on + r_on, off + r_off
    low, high = min(answerable), max(unanswerable)
    floors = [round(0.15 + 0.01 * i, 2) for i in range(16)]
    return {
        "answerable": len(answerable),
        "off_topic": len(unanswerable),
        "answerable_min": low,
        "off_topic_max": high,
        "worst_answerable": sorted(
            zip(answerable, ON_TOPIC + [q["question"] for q in queries if q["gold_docs"]], strict=True)
        )[:3],
        "best_off_topic": sorted(
            zip(unanswerable, OFF_TOPIC + [q["question"] for q in queries if not q["gold_docs"]], strict=True)
        )[-3:],
        "floor": round((low + high) / 2, 2) if low > high else None,
        "table": [
            {
                "floor": f,
                "answerable_kept": sum(s >= f for s in answerable) / len(answerable),
                "off_topic_rejected": sum(s < f for s in unanswerable) / len(unanswerable),
            }
            for f in floors
        ],
    }


# ---------------------------------------------------------------- report


def print_report(result: dict[str, Any]) -> None:
    if "calibration" in result:
        c = result["calibration"]
        print(
            f"Confidence floor (hybrid score): {c['answerable']} answerable questions, "
            f"{c['off_topic']} off-topic"
        )
        print(f"  lowest answerable top score  {c['answerable_min']:.3f}")
        for score, q in c["worst_answerable"]:
            print(f"      {score:.3f}  {q}")
        print(f"  highest off-topic top score  {c['off_topic_max']:.3f}")
        for score, q in reversed(c["best_off_topic"]):
            print(f"      {score:.3f}  {q}")
        print(f"  floor (middle of the gap)    {c['floor']}")
        print("  floor  answerable kept  off-topic rejected")
        for row in c["table"]:
            print(
                f"  {row['floor']:.2f}   {row['answerable_kept']:6.1%}          "
                f"{row['off_topic_rejected']:6.1%}"
            )
        return
    b = result["bot"]
    lat, burst = b["latency"], b["burst"]
    print(f"qabot bot against FakeTelegram on loopback ({result['index']})")
    print(f"  start-up to first getUpdates      {b['startup_s']:.2f} s")
    print(
        f"  latency, update → sendMessage     median {lat['median_ms']:.0f} ms, p95 "
        f"{lat['p95_ms']:.0f} ms, max {lat['max_ms']:.0f} ms (n={lat['n']}; target median < "
        f"{lat['target_ms']:.0f} ms: {'PASS' if lat['passed'] else 'MISS'})"
    )
    print(f"    of which update → getUpdates    median {lat['delivery_median_ms']:.1f} ms")
    print(
        f"  burst: {burst['questions']} questions, {burst['users']} users at once: "
        f"{burst['answered']}/{burst['questions']} answered ({burst['messages']} messages, "
        f"{burst['not_answers']} refusals/errors), last answer after {burst['last_answer_s']:.2f} s"
    )
    print(
        f"    per question                    median {burst['median_ms']:.0f} ms, p95 "
        f"{burst['p95_ms']:.0f} ms, max {burst['max_ms']:.0f} ms"
    )
    print(f"  SIGTERM → exit {b['shutdown']['exit_status']} in {b['shutdown']['seconds']:.2f} s")
    print(f"  load average before/after: {result['load_before']} / {result['load_after']}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=int, default=30, help="sequential questions (default 30)")
    parser.add_argument("--burst", type=int, default=50, help="questions arriving at once (default 50)")
    parser.add_argument("--users", type=int, default=20, help="users asking the burst (default 20)")
    parser.add_argument("--seeds", type=Path, help="seeds folder (default: shipped + fixtures)")
    parser.add_argument("--index", type=Path, help="index folder (default: a temporary one)")
    parser.add_argument("--calibrate", action="store_true", help="print the confidence-floor data")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if args.burst > 3 * args.users:
        parser.error("at most 3 burst questions per user: the per-user limit is 10 a minute")
    workdir = Path(tempfile.mkdtemp(prefix="qabot-bot-bench-"))
    try:
        seeds = args.seeds or build_corpus(workdir)
        index_dir = args.index or workdir / "embeddings"
        log(f"1. qabot index --seeds {seeds} --index {index_dir} …")
        log(f"   {index(seeds.resolve(), index_dir.resolve())}")
        result: dict[str, Any] = {"index": str(index_dir), "load_before": os.getloadavg()[0]}
        if args.calibrate:
            result["calibration"] = calibrate(workdir, seeds, index_dir)
        else:
            result["bot"] = bench_bot(seeds.resolve(), index_dir.resolve(), args.questions, args.burst,
                                      args.users)
        result["load_after"] = os.getloadavg()[0]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_report(result)


if __name__ == "__main__":
    main()
