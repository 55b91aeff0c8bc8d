"""Could other weights pick the answering sentence better? A model fitted on one half, tested on the other.

    .venv/bin/python benchmarks/refit.py --index /tmp/news-26

For every dev question (quiz and chat, halves A and B as benchmarks/answers.py splits them), the
reply is answered as the bot answers it and every sentence the answer layer scored is recorded
with its features (sentences.features, seen through a wrapper: nothing else changes). The
candidates of a question are its first article's sentences that could be chosen (usable, cosine
to the question at least Weights.min_cosine); a question counts as right when the candidate a
weighting scores highest holds an answer string. That is a proxy of answer_sentence@1 (no floor,
no follow-up rules): the table prints it beside the real figure, and the share of questions
whose candidates hold a right sentence at all (what a perfect choice would reach).

Then a linear scorer over the same features, fitted by softmax (listwise) loss on one half of
both sets pooled, pulled towards the shipped weights by an L2 term, is tested on the other half;
with --kinds, a weight per feature and question kind besides; with --extra, three more features
(the cosine and overlap less the article's best, and the sentence's length). If a fitted scorer
beats the shipped weights on the half it was not fitted on, in both sets, the features can do
better than the weights; if not, better choices need other evidence. Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from answers import CHAT, DEV, contains, halves  # noqa: E402
from common import log  # noqa: E402

from qabot import sentences  # noqa: E402
from qabot.answer import respond  # noqa: E402
from qabot.config import load_settings  # noqa: E402
from qabot.evaluate import read_queries  # noqa: E402
from qabot.reader import Retriever  # noqa: E402

FEATURES = ("overlap", "passage", "kind", "novelty", "lead", "names", "cosine")
EXTRA = ("cosine less the best", "overlap less the best", "length")


@dataclass
class Question:
    """One dev question's candidates: features (rows), which hold an answer string, its kind."""

    corpus: str  # quiz or chat
    half: str
    kind: str
    right_now: bool  # the reply's emphasised sentence holds an answer string (answer_sentence@1)
    x: np.ndarray
    y: np.ndarray


@contextmanager
def recorded() -> Iterator[list[tuple[str, sentences.Features]]]:
    """Every (sentence, features) the answer layer computes while the block runs."""
    calls: list[tuple[str, sentences.Features]] = []
    real = sentences.features

    def spy(sentence: str, *args: Any, **kwargs: Any) -> sentences.Features:
        found = real(sentence, *args, **kwargs)
        calls.append((sentence, found))
        return found

    sentences.features = spy  # type: ignore[assignment]
    try:
        yield calls
    finally:
        sentences.features = real  # type: ignore[assignment]


def collect(index: Path, dev: Path, extra: bool) -> list[Question]:
    """The candidates of every dev question, as the module docstring says."""
    settings = load_settings(seeds=dev / "corpus", index=index)
    retriever = Retriever(settings.index)
    least = sentences.Weights().min_cosine
    out: list[Question] = []
    quiz, _ = read_queries(dev / "queries.jsonl")
    chat, _ = read_queries(CHAT)
    for name, queries in (("quiz", quiz), ("chat", chat)):
        for half, part in halves(queries).items():
            log(f"{name} {half}: {len(part)} questions")
            for q in part:
                with recorded() as calls:
                    reply = respond(retriever, q.question, settings.search, as_of=q.date)
                if not reply.results:
                    continue
                first = reply.results[0]
                article = Path(first.path).read_text(encoding="utf-8")
                seen: dict[str, sentences.Features] = {}
                for text, found in calls:
                    text = text.strip()
                    if text not in seen and text in article and sentences.usable(text) \
                            and found.cosine >= least:
                        seen[text] = found
                texts = list(seen)
                rows = [[getattr(seen[t], f) for f in FEATURES] for t in texts]
                x = np.array(rows, dtype=float).reshape(-1, len(FEATURES))
                if extra and len(x):
                    longer = np.array([[math.log(len(t.split())) / 4] for t in texts])
                    x = np.hstack([x, x[:, 6:7] - x[:, 6].max(), x[:, 0:1] - x[:, 0].max(), longer])
                elif extra:
                    x = np.zeros((0, len(FEATURES) + len(EXTRA)))
                y = np.array([contains(q.answers, [t]) > 0 for t in texts], dtype=bool)
                out.append(Question(name, half, sentences.question_kind(q.question),
                                    contains(q.answers, [first.answer]) > 0, x, y))
    return out


def design(q: Question, kinds: tuple[str, ...]) -> np.ndarray:
    """The question's feature rows, with a copy per kind (zero unless it is the question's)."""
    if not kinds:
        return q.x
    return np.hstack([q.x, *[q.x * (q.kind == k) for k in kinds]])


def fit(questions: list[Question], start: np.ndarray, kinds: tuple[str, ...], l2: float,
        steps: int = 800, rate: float = 0.05) -> np.ndarray:
    """Weights minimising the softmax loss of the right candidates, plus l2 × distance to `start`."""
    prior = np.concatenate([start, np.zeros(len(start) * len(kinds))])
    w = prior.copy()
    data = [(design(q, kinds), q.y / q.y.sum()) for q in questions if q.y.any() and len(q.y) > 1]
    for _ in range(steps):
        grad = l2 * (w - prior)
        for x, target in data:
            s = x @ w
            p = np.exp(s - s.max())
            grad += 10 * x.T @ (p / p.sum() - target) / len(data)
        w -= rate * grad
    return w


def right(questions: list[Question], w: np.ndarray, kinds: tuple[str, ...] = ()) -> float:
    """Share of questions whose best-scored candidate holds an answer string."""
    return float(np.mean([bool(q.y[int(np.argmax(design(q, kinds) @ w))]) if len(q.y) else False
                          for q in questions]))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dev", type=Path, default=DEV, help="the built dev set [/tmp/news-dev]")
    ap.add_argument("--index", type=Path, default=Path("/tmp/news-dev-index"), help="its index")
    ap.add_argument("--kinds", action="store_true", help="also a weight per feature and question kind")
    ap.add_argument("--extra", action="store_true", help="three more features (module docstring)")
    args = ap.parse_args(argv)
    questions = collect(args.index, args.dev, args.extra)
    shipped = sentences.Weights()
    start = np.array([getattr(shipped, f) for f in FEATURES] + [0.0] * (len(EXTRA) if args.extra else 0))
    print(f"{'':<8}{'as@1 now':>10}{'proxy':>8}{'a right one':>13}")
    for corpus in ("quiz", "chat"):
        for half in "AB":
            part = [q for q in questions if q.corpus == corpus and q.half == half]
            print(f"{corpus} {half:<3}{np.mean([q.right_now for q in part]):>10.3f}{right(part, start):>8.3f}"
                  f"{np.mean([q.y.any() for q in part]):>13.3f}")
    kinds = tuple(sorted({q.kind for q in questions})) if args.kinds else ()
    names = list(FEATURES) + (list(EXTRA) if args.extra else [])
    print(f"\nFitted on one half, tested on the other (shipped weights after the slash); "
          f"{len(names)} features{', a copy per kind' if kinds else ''}")
    for l2 in (0.3, 1.0, 3.0):
        cells = []
        for train, test in (("A", "B"), ("B", "A")):
            w = fit([q for q in questions if q.half == train], start, kinds, l2)
            for corpus in ("quiz", "chat"):
                part = [q for q in questions if q.corpus == corpus and q.half == test]
                cells.append(f"{corpus} {test} {right(part, w, kinds):.3f}/{right(part, start):.3f}")
            if train == "A":
                fitted = dict(zip(names, np.round(w[: len(names)], 2).tolist(), strict=True))
        print(f"l2 {l2:<4} " + "  ".join(cells))
        print(f"        weights fitted on A: {fitted}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
