"""Which approximate FAISS index should qabot use above its size threshold? Synthetic 384-d corpora.

    .venv/bin/python benchmarks/ann_choice.py --passages 100000                # one size
    .venv/bin/python benchmarks/ann_choice.py --passages 100000,1000000 --json /tmp/ann.json
    .venv/bin/python benchmarks/ann_choice.py --checks-only                    # remove/reconstruct facts

For each size N: corpus_vectors(N) and 1,000 query_vectors, exact top-10 as the truth, then each
candidate built with faiss.index_factory(..., METRIC_INNER_PRODUCT), one at a time and freed:

    Flat, SQfp16, SQ8                      exhaustive (exact, then compressed)
    IVF<nlist>,{Flat,SQfp16,SQ8,PQ48,PQ96} nlist = 4*sqrt(N) rounded to a power of two, spherical
                                           k-means on min(N, --train-per-cell * nlist) sampled rows,
                                           trained once per N and shared by the codecs; nprobe swept
    HNSW32,{Flat,SQ8}                      efConstruction 40 (default), efSearch swept; skipped at a
                                           size whose build is estimated above --hnsw-max-minutes

Columns: build = k-means (shared, IVF only) + codec training + add, in seconds; size = write_index
bytes (what a reader holds in RAM unless mmapped); latency = one query at a time with FAISS's default
threads (2 here), p50/p95 in ms; recall@10 against the exact top 10 from the same single-query
results ("nn1 in 10": share of queries whose exact nearest neighbour is among the 10 found). A
setting that would take more than --query-seconds is measured on fewer queries (column q); "load"
is the 1-minute load average when the row was measured (the machine is shared).

Then: the IVF indexes read back in a fresh process with and without faiss.IO_FLAG_MMAP (peak RSS
via getrusage, RssAnon/RssFile from /proc), the best two IVF settings on a uniform corpus (the worst
case: no structure), and quick checks of remove_ids / reconstruct with a hashtable direct map.
Progress goes to stderr; the report to stdout.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import faiss
import numpy as np

# faiss re-exports every SWIG class, but its stubs (1.15) leave DirectMap out; swigfaiss is untyped.
from faiss.swigfaiss import DirectMap

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import log  # noqa: E402
from synthetic import corpus_vectors, exact_top_k, query_vectors, recall_at_k  # noqa: E402

DIM = 384
K = 10
NPROBES = (8, 16, 32, 64, 128)
EF_SEARCH = (32, 64, 128)
IVF_CODECS = ("Flat", "SQfp16", "SQ8", "PQ48", "PQ96")
HNSW_CODECS = ("Flat", "SQ8")
TMP = Path("/tmp")


def nlist_for(n: int) -> int:
    """4*sqrt(N) rounded (in log2) to a power of two: 1024 at 100k, 4096 at 1M."""
    return 2 ** round(math.log2(4 * math.sqrt(n)))


def index_bytes(index: faiss.Index, path: Path) -> int:
    faiss.write_index(index, str(path))
    return path.stat().st_size


def measure(index: faiss.Index, queries: np.ndarray, truth: np.ndarray,
            budget_s: float, min_q: int = 100) -> dict[str, Any]:
    """Single-query latency (ms) and recall@10 from the same results; stops early past budget_s."""
    for i in range(5):  # warm-up: first touches, thread pool start
        index.search(queries[i: i + 1], K)
    found = np.full((len(queries), K), -1, dtype=np.int64)
    times = []
    start = time.perf_counter()
    for i in range(len(queries)):
        t = time.perf_counter()
        _, ids = index.search(queries[i: i + 1], K)
        times.append(time.perf_counter() - t)
        found[i] = ids[0]
        if i + 1 >= min_q and time.perf_counter() - start > budget_s:
            break
    n = len(times)
    ms = sorted(1000 * t for t in times)
    return {"q": n, "p50_ms": statistics.median(ms), "p95_ms": ms[min(n - 1, int(0.95 * n))],
            "recall": recall_at_k(found[:n], truth[:n]),
            "nn1": float(np.mean((found[:n] == truth[:n, :1]).any(axis=1)))}


def ivf_set(index: faiss.Index, nprobe: int) -> None:
    faiss.extract_index_ivf(index).nprobe = nprobe


def hnsw_set(index: faiss.Index, ef: int) -> None:
    assert isinstance(index, faiss.IndexHNSW)  # index_factory returns the subclass
    index.hnsw.efSearch = ef


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.rows: list[dict[str, Any]] = []
        self.mmap: list[dict[str, Any]] = []
        self.notes: list[str] = []
        self.hnsw_build_s: dict[str, tuple[int, float]] = {}  # codec -> (N, seconds), for estimates
        self.tag = f"ann_choice_{os.getpid()}"

    def row(self, **kw: Any) -> None:
        kw["load1"] = os.getloadavg()[0]  # the machine is shared: load beside every measurement
        self.rows.append(kw)
        r = kw
        log(f"  {r['corpus']} N={r['n']:,} {r['index']} {r['param']}: build {r['build_s']:.1f}s "
            f"size {r['bytes'] / 2**20:.0f} MiB p50 {r['p50_ms']:.2f} ms p95 {r['p95_ms']:.2f} ms "
            f"recall {r['recall']:.3f} (q={r['q']}, load {r['load1']:.1f})")

    # ---- candidates -------------------------------------------------------------------------
    def exhaustive(self, n: int, corpus: str, x: np.ndarray, q: np.ndarray, truth: np.ndarray) -> None:
        for codec in ("Flat", "SQfp16", "SQ8"):
            index = faiss.index_factory(DIM, codec, faiss.METRIC_INNER_PRODUCT)
            t0 = time.perf_counter()
            index.train(x)  # SQ: per-dimension ranges (SQfp16/Flat: no-op)
            t1 = time.perf_counter()
            index.add(x)
            t2 = time.perf_counter()
            path = TMP / f"{self.tag}_{codec}.faiss"
            size = index_bytes(index, path)
            path.unlink()
            m = measure(index, q, truth, self.args.query_seconds)
            self.row(n=n, corpus=corpus, index=codec, param="", kmeans_s=0.0, train_s=t1 - t0,
                     add_s=t2 - t1, build_s=t2 - t0, bytes=size, **m)
            del index

    def train_coarse(self, x: np.ndarray, nlist: int) -> tuple[np.ndarray, np.ndarray, float]:
        """Spherical k-means centroids (nlist, DIM) placed by IndexIVF.train on a sample; the sample."""
        index = faiss.index_factory(DIM, f"IVF{nlist},Flat", faiss.METRIC_INNER_PRODUCT)
        ivf = faiss.extract_index_ivf(index)
        if not hasattr(ivf.cp, "spherical"):
            raise SystemExit("this FAISS has no ClusteringParameters.spherical")
        ivf.cp.spherical = True  # already the default for METRIC_INNER_PRODUCT; explicit anyway
        m = min(len(x), self.args.train_per_cell * nlist)
        rows = np.sort(np.random.default_rng(3).choice(len(x), m, replace=False)) if m < len(x) else None
        sample = x[rows] if rows is not None else x
        t = time.perf_counter()
        index.train(sample)
        secs = time.perf_counter() - t
        return ivf.quantizer.reconstruct_n(0, nlist), sample, secs

    def ivf(self, n: int, corpus: str, x: np.ndarray, q: np.ndarray, truth: np.ndarray,
            codecs: tuple[str, ...] = IVF_CODECS, nprobes: tuple[int, ...] = NPROBES,
            mmap_test: bool = True, label: str = "") -> None:
        nlist = nlist_for(n)
        log(f"  k-means: {nlist} cells ...")
        centroids, sample, km_s = self.train_coarse(x, nlist)
        log(f"  k-means: {nlist} cells on {len(sample):,} rows in {km_s:.1f}s")
        self.notes.append(f"{corpus} N={n:,}: spherical k-means, {nlist} cells, {len(sample):,} "
                          f"training rows, {km_s:.1f}s (shared by all IVF codecs at this N)")
        for codec in codecs:
            name = f"IVF{nlist},{codec}"
            index = faiss.index_factory(DIM, name, faiss.METRIC_INNER_PRODUCT)
            ivf = faiss.extract_index_ivf(index)
            ivf.cp.spherical = True
            if hasattr(ivf, "do_polysemous_training"):
                ivf.do_polysemous_training = False  # only for polysemous search, which we don't use
            ivf.quantizer.add(centroids)  # trained quantizer with nlist rows: train() skips k-means
            t0 = time.perf_counter()
            index.train(sample)  # codec only (SQ ranges, PQ codebooks); nothing for Flat
            t1 = time.perf_counter()
            index.add(x)
            t2 = time.perf_counter()
            path = TMP / f"{self.tag}_{codec}.faiss"
            size = index_bytes(index, path)
            for nprobe in nprobes:
                ivf_set(index, nprobe)
                m = measure(index, q, truth, self.args.query_seconds)
                self.row(n=n, corpus=corpus, index=name + label, param=f"nprobe={nprobe}", kmeans_s=km_s,
                         train_s=t1 - t0, add_s=t2 - t1, build_s=km_s + (t2 - t0), bytes=size, **m)
            del index, ivf
            if mmap_test and codec in self.args.mmap_codecs:
                self.mmap_test(n, name, path, q, truth)
            path.unlink()

    def hnsw(self, n: int, corpus: str, x: np.ndarray, q: np.ndarray, truth: np.ndarray) -> None:
        for codec in HNSW_CODECS:
            name = f"HNSW32,{codec}"
            if codec not in self.hnsw_build_s and n > 200_000:
                # No smaller size measured in this run: time a build on the first 100k rows.
                probe = faiss.index_factory(DIM, name, faiss.METRIC_INNER_PRODUCT)
                t = time.perf_counter()
                probe.train(x[:100_000])
                probe.add(x[:100_000])
                self.hnsw_build_s[codec] = (100_000, time.perf_counter() - t)
                del probe
            if codec in self.hnsw_build_s:
                n0, s0 = self.hnsw_build_s[codec]
                est = s0 * (n / n0) * (math.log(n) / math.log(n0))
                if est > 60 * self.args.hnsw_max_minutes:
                    msg = (f"{corpus} N={n:,}: {name} skipped: build estimated at {est / 60:.0f} min "
                           f"from {s0:.0f}s at {n0:,} (x N, x log N) > {self.args.hnsw_max_minutes:g} min")
                    log("  " + msg)
                    self.notes.append(msg)
                    continue
                log(f"  {name}: build estimated at {est / 60:.1f} min")
            index = faiss.index_factory(DIM, name, faiss.METRIC_INNER_PRODUCT)
            t0 = time.perf_counter()
            index.train(x)
            t1 = time.perf_counter()
            index.add(x)
            t2 = time.perf_counter()
            self.hnsw_build_s.setdefault(codec, (n, t2 - t0))
            path = TMP / f"{self.tag}_hnsw.faiss"
            size = index_bytes(index, path)
            path.unlink()
            for ef in EF_SEARCH:
                hnsw_set(index, ef)
                m = measure(index, q, truth, self.args.query_seconds)
                self.row(n=n, corpus=corpus, index=name, param=f"efSearch={ef}", kmeans_s=0.0,
                         train_s=t1 - t0, add_s=t2 - t1, build_s=t2 - t0, bytes=size, **m)
            del index

    # ---- mmap in a fresh process ------------------------------------------------------------
    def mmap_test(self, n: int, name: str, path: Path, q: np.ndarray, truth: np.ndarray) -> None:
        qpath = TMP / f"{self.tag}_q.npy"
        np.save(qpath, q)
        tpath = TMP / f"{self.tag}_t.npy"
        np.save(tpath, truth)
        for mode in ("read", "mmap", "mmap-noprefetch"):
            out = subprocess.run([sys.executable, "-c", CHILD, str(path), str(qpath), str(tpath), mode,
                                  str(self.args.mmap_nprobe)], capture_output=True, text=True)
            if out.returncode != 0:
                err = (out.stderr.strip().splitlines() or ["?"])[-1]
                res: dict[str, Any] = {"ok": False, "error": err[:200]}
            else:
                res = {"ok": True, **json.loads(out.stdout.strip().splitlines()[-1])}
            res.update(n=n, index=name, mode=mode, file_bytes=path.stat().st_size)
            self.mmap.append(res)
            log(f"  fresh process {mode} {name}: {res}")
        qpath.unlink()
        tpath.unlink()

    # ---- a whole size ------------------------------------------------------------------------
    def size(self, n: int) -> None:
        log(f"N={n:,}: generating corpus, queries, exact top-{K}")
        x = corpus_vectors(n)
        q = query_vectors(x, self.args.queries)
        t = time.perf_counter()
        truth = exact_top_k(x, q, K)
        log(f"  exact top-{K} for {len(q)} queries in {time.perf_counter() - t:.1f}s")
        if "exhaustive" in self.args.parts:
            self.exhaustive(n, "news", x, q, truth)
        if "ivf" in self.args.parts:
            self.ivf(n, "news", x, q, truth)
        if "hnsw" in self.args.parts:
            self.hnsw(n, "news", x, q, truth)

    def uniform(self, n: int) -> None:
        """The best two IVF settings (met recall 0.95 fastest, two different codecs) on topics=0."""
        ok = [r for r in self.rows if r["n"] == n and r["corpus"] == "news" and r["index"].startswith("IVF")
              and r["recall"] >= 0.95]
        ok.sort(key=lambda r: r["p50_ms"])
        picks: list[dict[str, Any]] = []
        for r in ok:
            if all(p["index"] != r["index"] for p in picks):
                picks.append(r)
            if len(picks) == 2:
                break
        if not picks:
            self.notes.append(f"uniform N={n:,}: no IVF setting reached recall 0.95 on the news corpus")
            return
        log(f"uniform N={n:,}: " + ", ".join(f"{p['index']} {p['param']}" for p in picks))
        self.notes.append("uniform corpus runs the best two news settings: "
                          + ", ".join(f"{p['index']} {p['param']}" for p in picks) + " (all nprobe shown)")
        x = corpus_vectors(n, topics=0)
        q = query_vectors(x, self.args.queries)
        truth = exact_top_k(x, q, K)
        codecs = tuple(p["index"].split(",", 1)[1] for p in picks)
        self.ivf(n, "uniform", x, q, truth, codecs=codecs, mmap_test=False)

    # ---- report ------------------------------------------------------------------------------
    def report(self) -> None:
        for n in sorted({r["n"] for r in self.rows}):
            print(f"\n## N = {n:,} passages, {DIM}-d, {self.args.queries} queries, k = {K}\n")
            print("| corpus | index | setting | build s (k-means + train + add) | MiB | B/vec | "
                  "p50 ms | p95 ms | recall@10 | nn1 in 10 | q | load |")
            print("|---|---|---|---|---|---|---|---|---|---|---|---|")
            for r in (r for r in self.rows if r["n"] == n):
                parts = (f"{r['kmeans_s']:.0f} + " if r["kmeans_s"] else "")
                parts += f"{r['train_s']:.1f} + {r['add_s']:.1f}"
                print(f"| {r['corpus']} | {r['index']} | {r['param']} | {r['build_s']:.1f} ({parts}) | "
                      f"{r['bytes'] / 2**20:.0f} | {r['bytes'] / n:.0f} | {r['p50_ms']:.2f} | "
                      f"{r['p95_ms']:.2f} | {r['recall']:.3f} | {r['nn1']:.3f} | {r['q']} | "
                      f"{r['load1']:.1f} |")
        if self.mmap:
            print(f"\n## Fresh process: read_index vs IO_FLAG_MMAP, then {self.args.queries} queries "
                  f"(nprobe={self.args.mmap_nprobe})\n")
            print("| N | index | mode | file MiB | ok | read s | peak RSS MiB (after imports) | "
                  "RssAnon MiB | RssFile MiB | p50 ms | p95 ms | recall@10 |")
            print("|---|---|---|---|---|---|---|---|---|---|---|---|")
            for m in self.mmap:
                if not m["ok"]:
                    print(f"| {m['n']:,} | {m['index']} | {m['mode']} | {m['file_bytes'] / 2**20:.0f} | "
                          f"no: {m['error']} | | | | | | | |")
                    continue
                print(f"| {m['n']:,} | {m['index']} | {m['mode']} | {m['file_bytes'] / 2**20:.0f} | yes | "
                      f"{m['read_s']:.2f} | {m['hwm_mib']:.0f} ({m['base_mib']:.0f}) | "
                      f"{m['anon_mib']:.0f} | {m['file_mib']:.0f} | {m['p50_ms']:.2f} | {m['p95_ms']:.2f} | "
                      f"{m['recall']:.3f} |")
        if self.notes:
            print("\nNotes:")
            for s in self.notes:
                print(f"- {s}")


CHILD = textwrap.dedent("""
    import json, resource, statistics, sys, time
    import numpy as np
    def status(key):
        for line in open('/proc/self/status'):
            if line.startswith(key):
                return int(line.split()[1]) / 1024
    import faiss
    path, qpath, tpath, mode, nprobe = sys.argv[1:]
    q = np.load(qpath); truth = np.load(tpath)
    base = status('VmHWM')
    t = time.perf_counter()
    index = faiss.read_index(path, faiss.IO_FLAG_MMAP if mode.startswith('mmap') else 0)
    read_s = time.perf_counter() - t
    ivf = faiss.extract_index_ivf(index)
    ivf.nprobe = int(nprobe)
    lists = faiss.downcast_InvertedLists(ivf.invlists)
    if mode == 'mmap-noprefetch':
        lists.prefetch_nthread = 0  # OnDiskInvertedLists starts threads to prefetch every list by default
    found = np.empty((len(q), truth.shape[1]), dtype=np.int64); ms = []
    for i in range(len(q)):
        t = time.perf_counter(); _, ids = index.search(q[i:i + 1], truth.shape[1])
        ms.append(1000 * (time.perf_counter() - t)); found[i] = ids[0]
    recall = float(np.mean([len(np.intersect1d(f, g)) for f, g in zip(found, truth)])) / truth.shape[1]
    # ru_maxrss is kept across fork+exec on Linux (it starts at the parent's peak), so the child's own
    # peak comes from VmHWM; ru_maxrss is reported beside it.
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    res = dict(read_s=read_s, base_mib=base, hwm_mib=status('VmHWM'), anon_mib=status('RssAnon'),
               file_mib=status('RssFile'), maxrss_mib=maxrss,
               p50_ms=statistics.median(ms), p95_ms=sorted(ms)[int(0.95 * len(ms))], recall=recall,
               lists=type(lists).__name__)
    print(json.dumps(res))
""")



def short(err: str) -> str:
    """A FAISS error without its 'Error in <signature> at <file>:<line>:' prefix."""
    err = re.sub(r"^.*?Error in .*? at \S+:\d+:\s*", "", err.strip())
    return (err or "no message")[:150]


def checks() -> list[str]:
    """remove_ids / reconstruct / direct-map facts on a small IVF index; returns report lines."""
    out: list[str] = []
    x = corpus_vectors(20_000)
    ids = np.arange(len(x), dtype=np.int64) * 3 + 7  # ids that are not row numbers
    gone = ids[[5, 100, 19_999]]
    more = ids[[7, 8]]
    kept = int(ids[6])
    new_ids = np.array([10**9, 10**9 + 1, 10**9 + 2], dtype=np.int64)
    path = TMP / f"ann_choice_{os.getpid()}_checks.faiss"

    def attempt(label: str, fn: Any, *a: Any) -> Any:
        try:
            r = fn(*a)
        except Exception as e:  # noqa: BLE001
            lines = str(e).strip().splitlines()
            why = next((m for m in lines if "rror" in m), lines[0] if lines else type(e).__name__)
            out.append(f"{label}: FAILS ({short(why)})")
            return None
        shown = r.shape if isinstance(r, np.ndarray) else r
        out.append(f"{label}: ok" + (f" -> {shown}" if shown is not None else ""))
        return r

    def build(codec: str, dm: int | None) -> Any:
        index = faiss.index_factory(DIM, f"IVF128,{codec}", faiss.METRIC_INNER_PRODUCT)
        assert isinstance(index, faiss.IndexIVF)  # index_factory returns the subclass
        index.train(x)
        if dm is not None:
            index.set_direct_map_type(dm)
        index.add_with_ids(x, ids)
        index.nprobe = 128
        return index

    def absent(index: Any, removed: np.ndarray) -> bool:
        _, found = index.search(x[[5, 100, 19_999]], K)
        return not bool(np.isin(found, removed).any())

    # Plain IVF (no direct map): remove, then after write/read.
    ix = build("Flat", None)
    out.append(f"IVF128,Flat direct map type by default: {ix.direct_map.type} (0 = NoMap)")
    faiss.write_index(ix, str(path))
    rd = faiss.read_index(str(path))
    attempt("read_index then remove_ids(3 ids)", rd.remove_ids, gone)
    out.append(f"  ntotal {x.shape[0]} -> {rd.ntotal}; removed ids absent from a full-probe search: "
               f"{absent(rd, gone)}")
    attempt("read_index then add_with_ids(3 rows)", rd.add_with_ids, x[:3], new_ids)
    attempt("reconstruct(id) with no direct map", rd.reconstruct, kept)
    mm = faiss.read_index(str(path), faiss.IO_FLAG_MMAP)
    invlists = faiss.extract_index_ivf(mm).invlists
    assert invlists is not None  # every IVF index owns inverted lists
    lists = faiss.downcast_InvertedLists(invlists)
    out.append(f"IO_FLAG_MMAP read: inverted lists are {type(lists).__name__}, ntotal {mm.ntotal}")
    del mm, rd, ix
    # Mutating a read-only mmapped index can abort the process (C++ exception inside OpenMP), so
    # each attempt runs in a child.
    for what, call in (("remove_ids", "ix.remove_ids(np.array([7, 10], dtype=np.int64))"),
                       ("add_with_ids", f"ix.add_with_ids(np.zeros((1, {DIM}), 'float32'), np.array([5]))")):
        code = (f"import faiss, numpy as np; ix = faiss.read_index({str(path)!r}, faiss.IO_FLAG_MMAP); "
                f"r = {call}; print('ok', r, ix.ntotal)")
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        tail = (res.stderr.strip().splitlines() or [""])
        why = short(next((t for t in tail if "rror" in t), tail[-1]))
        out.append(f"IO_FLAG_MMAP read then {what} (child process): " + (
            f"ok -> {res.stdout.strip()}" if res.returncode == 0 else
            f"FAILS, exit code {res.returncode}{' (process aborted)' if res.returncode < 0 else ''}: "
            f"{why}"))

    # Array direct map: no explicit ids, no removal.
    ix = faiss.index_factory(DIM, "IVF128,Flat", faiss.METRIC_INNER_PRODUCT)
    assert isinstance(ix, faiss.IndexIVF)
    ix.train(x)
    ix.set_direct_map_type(DirectMap.Array)
    attempt("DirectMap.Array then add_with_ids", ix.add_with_ids, x, ids)
    ix.add(x)
    attempt("DirectMap.Array then remove_ids", ix.remove_ids, np.array([5, 100], dtype=np.int64))
    del ix

    # Hashtable direct map: remove, reconstruct, write/read, remove again.
    for codec in ("Flat", "SQ8"):
        ix = build(codec, DirectMap.Hashtable)
        attempt(f"IVF128,{codec} + DirectMap.Hashtable: remove_ids(3 ids)", ix.remove_ids, gone)
        out.append(f"  removed ids absent from a full-probe search: {absent(ix, gone)}")
        rec = attempt("  reconstruct(kept id) after remove", ix.reconstruct, kept)
        if rec is not None:
            out.append(f"  max |reconstructed - original| = {np.abs(rec - x[6]).max():.2e}")
        attempt("  reconstruct(removed id) after remove (should fail)", ix.reconstruct, int(gone[0]))
        faiss.write_index(ix, str(path))
        rd = faiss.read_index(str(path))
        dm_type = faiss.extract_index_ivf(rd).direct_map.type
        out.append(f"  after write/read: direct map type {dm_type} (2 = Hashtable), ntotal {rd.ntotal}")
        rec = attempt("  reconstruct(kept id) after write/read", rd.reconstruct, kept)
        if rec is not None:
            out.append(f"  max |reconstructed - original| = {np.abs(rec - x[6]).max():.2e}")
        attempt("  remove_ids after write/read", rd.remove_ids, more)
        attempt("  reconstruct(just-removed id) (should fail)", rd.reconstruct, int(more[0]))
        attempt("  add_with_ids after write/read", rd.add_with_ids, x[:1], new_ids[:1])
        attempt("  reconstruct(just-added id)", rd.reconstruct, int(new_ids[0]))
        faiss.write_index(ix, str(path))
        mm = faiss.read_index(str(path), faiss.IO_FLAG_MMAP)
        attempt("  IO_FLAG_MMAP read: reconstruct(kept id)", mm.reconstruct, kept)
        del mm, rd, ix

    h = faiss.index_factory(DIM, "HNSW32,Flat", faiss.METRIC_INNER_PRODUCT)
    h.add(x[:2000])
    attempt("HNSW32,Flat remove_ids", h.remove_ids, np.array([1], dtype=np.int64))
    path.unlink(missing_ok=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--passages", action="append", default=[],
                    help="corpus size(s), repeatable or comma list (default 100000)")
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--query-seconds", type=float, default=20.0,
                    help="time cap per setting for the one-at-a-time queries (at least 100 are run)")
    ap.add_argument("--train-per-cell", type=int, default=64,
                    help="k-means sample = min(N, this * nlist) rows")
    ap.add_argument("--parts", default="exhaustive,ivf,hnsw", help="comma list of exhaustive,ivf,hnsw")
    ap.add_argument("--hnsw-max-minutes", type=float, default=15.0)
    ap.add_argument("--mmap-codecs", default="Flat,SQ8,PQ48", help="IVF codecs read back in a fresh process")
    ap.add_argument("--mmap-nprobe", type=int, default=32)
    ap.add_argument("--uniform", type=int, default=100_000, help="uniform-corpus size (0: skip)")
    ap.add_argument("--no-checks", action="store_true")
    ap.add_argument("--checks-only", action="store_true")
    ap.add_argument("--json", type=Path, help="also write every measurement here")
    args = ap.parse_args()
    args.parts = set(args.parts.split(","))
    args.mmap_codecs = set(args.mmap_codecs.split(","))
    sizes = [int(float(s)) for a in args.passages or ["100000"] for s in a.split(",") if s]
    log(f"faiss {faiss.__version__}, {faiss.omp_get_max_threads()} threads")
    bench = Bench(args)
    facts: list[str] = []
    if not args.checks_only:
        for n in sizes:
            bench.size(n)
            if n == args.uniform:
                bench.uniform(n)
        bench.report()
    if not args.no_checks:
        log("remove/reconstruct checks")
        facts = checks()
        print("\n## remove_ids / reconstruct (IVF128 on 20k rows)\n")
        for s in facts:
            print(f"- {s}" if not s.startswith("  ") else f"  - {s.strip()}")
    if args.json:
        args.json.write_text(json.dumps({"faiss": faiss.__version__, "rows": bench.rows, "mmap": bench.mmap,
                                         "notes": bench.notes, "checks": facts}, indent=1))


if __name__ == "__main__":
    main()
