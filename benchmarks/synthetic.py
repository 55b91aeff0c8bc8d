"""Synthetic embedding corpora shaped like a news corpus, for index benchmarks.

    .venv/bin/python benchmarks/synthetic.py             # check the cosine figures on 20k rows
    .venv/bin/python benchmarks/synthetic.py --n 100000  # ... on another size

Model (all noise terms N(0, I/dim), so each has squared norm ~1):

    topic centre    t
    article centre  a = t + sqrt(0.714) * noise
    passage         p = a + sqrt(1.143) * noise, then normalised

|p|^2 ~ 1 + 0.714 + 1.143 = 2.857, so the expected cosines are 1.714/2.857 = 0.60 between passages
of one article, 1/2.857 = 0.35 between passages of one topic's different articles, ~0 otherwise.
A query is a corpus row plus 1.02 * noise, normalised: cosine ~1/sqrt(1 + 1.02^2) = 0.70 to its
source passage, like a real question to the passage that answers it.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

CHUNK_ARTICLES = 5_000  # 50k rows of 384 floats (~75 MB) generated at a time
ARTICLE_SPREAD = math.sqrt(0.714)
PASSAGE_SPREAD = math.sqrt(1.143)


def _normalise(x: np.ndarray) -> np.ndarray:
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def corpus_vectors(n: int, dim: int = 384, seed: int = 0, topics: int | None = None,
                   per_article: int = 10) -> np.ndarray:
    """(n, dim) float32 unit rows. Hierarchical like a news corpus: topic centre t ~ N(0, I/dim);
    article centre a = t + sqrt(0.714)*N(0, I/dim); passage = a + sqrt(1.143)*N(0, I/dim); normalised.
    That gives cos(passage, passage of same article) ~0.6, same topic other article ~0.35, unrelated ~0.
    Consecutive rows are passages of one article (per_article rows each); topics default max(1, n // 2000)
    articles are assigned to topics at random. topics=0 means uniform on the sphere (no structure:
    the worst case)."""
    if n < 0 or dim < 1 or per_article < 1:
        raise ValueError("need n >= 0, dim >= 1, per_article >= 1")
    rng = np.random.default_rng(seed)
    scale = np.float32(1 / math.sqrt(dim))
    out = np.empty((n, dim), dtype=np.float32)  # the only full-size allocation
    if topics == 0:
        step = CHUNK_ARTICLES * per_article
        for lo in range(0, n, step):
            hi = min(n, lo + step)
            out[lo:hi] = rng.standard_normal((hi - lo, dim), dtype=np.float32)
            _normalise(out[lo:hi])
        return out
    topics = max(1, n // 2000) if topics is None else topics
    if topics < 0:
        raise ValueError("topics must be >= 0")
    articles = -(-n // per_article)
    centres = rng.standard_normal((topics, dim), dtype=np.float32) * scale
    topic_of = rng.integers(0, topics, size=articles)
    for a_lo in range(0, articles, CHUNK_ARTICLES):
        a_hi = min(articles, a_lo + CHUNK_ARTICLES)
        art = centres[topic_of[a_lo:a_hi]]
        art += rng.standard_normal(art.shape, dtype=np.float32) * (scale * np.float32(ARTICLE_SPREAD))
        lo, hi = a_lo * per_article, min(n, a_hi * per_article)
        block = np.repeat(art, per_article, axis=0)[: hi - lo]
        block += rng.standard_normal(block.shape, dtype=np.float32) * (scale * np.float32(PASSAGE_SPREAD))
        out[lo:hi] = _normalise(block)
    return out


def query_vectors(corpus: np.ndarray, count: int, seed: int = 1, noise: float = 1.02) -> np.ndarray:
    """count unit queries: a random corpus row + noise*N(0, I/dim), normalised (cos to that row ~0.7,
    like a real question to its answering passage)."""
    q, _ = _queries_with_sources(corpus, count, seed, noise)
    return q


def _queries_with_sources(corpus: np.ndarray, count: int, seed: int = 1,
                          noise: float = 1.02) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    dim = corpus.shape[1]
    src = rng.integers(0, corpus.shape[0], size=count)
    q = corpus[src].astype(np.float32, copy=True)
    q += rng.standard_normal(q.shape, dtype=np.float32) * np.float32(noise / math.sqrt(dim))
    return _normalise(q), src


def _top_k_scores(corpus: np.ndarray, queries: np.ndarray, k: int,
                  block: int = 20_000) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k by inner product: (scores, row numbers), best first, `block` corpus rows at a time."""
    nq = queries.shape[0]
    best_s = np.full((nq, 0), -np.inf, dtype=np.float32)
    best_i = np.empty((nq, 0), dtype=np.int64)
    q = np.ascontiguousarray(queries, dtype=np.float32)
    for lo in range(0, corpus.shape[0], block):
        s = q @ corpus[lo: lo + block].T  # (nq, block)
        kk = min(k, s.shape[1])
        part = np.argpartition(-s, kk - 1, axis=1)[:, :kk]
        cand_s = np.concatenate([best_s, np.take_along_axis(s, part, axis=1)], axis=1)
        cand_i = np.concatenate([best_i, part + lo], axis=1)
        order = np.argsort(-cand_s, axis=1, kind="stable")[:, :k]
        best_s = np.take_along_axis(cand_s, order, axis=1)
        best_i = np.take_along_axis(cand_i, order, axis=1)
    return best_s, best_i.astype(np.int64)


def exact_top_k(corpus: np.ndarray, queries: np.ndarray, k: int = 10) -> np.ndarray:
    """int64 (count, k) row numbers of the exact inner-product top k, best first; the corpus is
    scanned 20k rows x all queries at a time so memory stays bounded."""
    return _top_k_scores(corpus, queries, k)[1]


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean |found ∩ truth| / k over queries (k = truth's width; -1 in found never matches)."""
    k = truth.shape[1]
    hits = sum(len(np.intersect1d(f[f >= 0], t)) for f, t in zip(found[:, :k], truth, strict=True))
    return hits / (k * truth.shape[0])


def _check(n: int, per_article: int = 10, pairs: int = 200_000) -> None:
    """Print the empirical cosines the docstrings promise, on n rows."""
    t0 = time.perf_counter()
    x = corpus_vectors(n, per_article=per_article)
    gen = time.perf_counter() - t0
    topics = max(1, n // 2000)
    # Recover the topic of each article the same way corpus_vectors draws it.
    rng = np.random.default_rng(0)
    rng.standard_normal((topics, x.shape[1]), dtype=np.float32)
    topic_of = rng.integers(0, topics, size=-(-n // per_article))
    article = np.arange(n) // per_article
    topic = topic_of[article]
    r = np.random.default_rng(7)

    def mean_cos(i: np.ndarray, j: np.ndarray) -> float:
        return float(np.mean(np.einsum("ij,ij->i", x[i], x[j])))

    i = r.integers(0, n, pairs)
    j = article[i] * per_article + r.integers(0, per_article, pairs)
    keep = (j != i) & (j < n)
    same_article = mean_cos(i[keep], j[keep])
    # Same topic, other article: pick random rows until the topic matches.
    i = r.integers(0, n, pairs * 20)
    j = r.integers(0, n, pairs * 20)
    keep = (topic[i] == topic[j]) & (article[i] != article[j])
    same_topic = mean_cos(i[keep][:pairs], j[keep][:pairs])
    keep = topic[i] != topic[j]
    unrelated = mean_cos(i[keep][:pairs], j[keep][:pairs])
    q, src = _queries_with_sources(x, 1000)
    to_source = float(np.mean(np.einsum("ij,ij->i", q, x[src])))
    scores, ids = _top_k_scores(x, q, 10)
    top1_is_source = float(np.mean(ids[:, 0] == src))
    src_in_top10 = float(np.mean((ids == src[:, None]).any(axis=1)))
    print(f"n={n:,} topics={topics} per_article={per_article} (generated in {gen:.1f}s)")
    print(f"  mean cos same article      {same_article:.3f}   (model 0.60)")
    print(f"  mean cos same topic        {same_topic:.3f}   (model 0.35)")
    print(f"  mean cos unrelated         {unrelated:.3f}   (model 0.00)")
    print(f"  mean cos query -> source   {to_source:.3f}   (model 0.70)")
    print(f"  1,000 queries: mean top-1 cos {scores[:, 0].mean():.3f}, mean top-10 (10th) cos "
          f"{scores[:, 9].mean():.3f}, mean of top-10 {scores.mean():.3f}  "
          f"(MiniLM on SciFact: top-1 ~0.6, top-10 ~0.45)")
    print(f"  source is top-1 for {top1_is_source:.1%}, in the top-10 for {src_in_top10:.1%}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, action="append", help="corpus size(s) to check (default 20,000)")
    args = ap.parse_args()
    for n in args.n or [20_000]:
        _check(n)


if __name__ == "__main__":
    main()
