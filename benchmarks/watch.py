"""How long after a new article is written can a question find it? (`qabot index --watch`)

Run from the repository root:

    .venv/bin/python benchmarks/watch.py [--articles 2000] [--additions 10] [--json]

The corpus is the first N SciFact abstracts (sorted by file name), each prefixed " date 2020-01-01 ",
in /tmp/qabot-watch-bench-N/seeds with its index in /tmp/qabot-watch-bench-N/index. Building that
index from scratch takes minutes (2,000 articles: several on 2 cores), so a folder left by an
earlier run is reused, and the report says so; `--fresh` rebuilds it.

Measured: a real `qabot index --watch` subprocess watches the folder; the next SciFact abstracts
are written in one at a time, and for each the clock runs from the moment its file is closed to
the moment `qabot.retrieve.search` in this process returns it for its own title (the manifest is
polled every 20 ms; a search runs on each new generation). Median over `--additions` articles;
target under 3 s. The added articles are deleted again at the end, so the cached index stays at N.

`--existing ROOT` watches ROOT/seeds and ROOT/index instead, as they are: for instance the
1,000,000-passage index `benchmarks/scale.py --passages 1000000 --cold-ask --dir ROOT` leaves
(its manifest then names the real encoder); the added articles are the first SciFact abstracts.

The human-readable table goes to stdout (`--json`: one JSON object instead); progress to stderr.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from common import DEFAULT_SCIFACT, clean_env, log, qabot_exe

PREFIX = " date 2020-01-01 "
TARGET_S = 3.0
COMMIT = re.compile(r"Indexed (\d+) articles, (\d+) passages .* in ([\d.]+)s")





def prepare(sources: list[Path], root: Path, n: int, fresh: bool) -> dict[str, Any]:
    """Seeds for the first n abstracts and their index: reused when an earlier run left them."""
    seeds, index = root / "seeds", root / "index"
    if fresh:
        shutil.rmtree(root, ignore_errors=True)
    manifest_path = index / "manifest.json"
    names = {s.name for s in sources[:n]}
    if manifest_path.is_file() and {p.name for p in seeds.glob("*.txt")} == names:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        from qabot import store

        if set(store.load_snapshot(index).articles) == names:
            log(f"reusing the index in {index} (last committed {manifest['committed_at']})")
            return {"reused": True, "committed_at": manifest["committed_at"], "build_s": None,
                    "passages": manifest["passage_count"]}
    shutil.rmtree(root, ignore_errors=True)
    seeds.mkdir(parents=True)
    for src in sources[:n]:
        (seeds / src.name).write_text(PREFIX + src.read_text(encoding="utf-8"), encoding="utf-8")
    log(f"building the index of {n} articles in {index} (minutes for thousands) …")
    started = time.perf_counter()
    proc = subprocess.run([str(qabot_exe()), "index", "-q", "--seeds", str(seeds), "--index", str(index)],
                          env=clean_env(), capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"qabot index failed:\n{proc.stderr}")
    build_s = time.perf_counter() - started
    log(f"   {proc.stdout.strip()} (wall {build_s:.0f} s)")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    return {"reused": False, "committed_at": manifest["committed_at"], "build_s": build_s,
            "passages": manifest["passage_count"]}


class WatchProcess:
    """`qabot index --watch` with its output lines collected by a reader thread."""

    def __init__(self, seeds: Path, index: Path) -> None:
        self.proc = subprocess.Popen(
            [str(qabot_exe()), "index", "--watch", "-q", "--seeds", str(seeds), "--index", str(index)],
            env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self._cv = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._cv:
                self.lines.append(line.rstrip("\n"))
                self._cv.notify_all()
        with self._cv:
            self._cv.notify_all()

    def wait_for(self, pattern: re.Pattern[str] | str, after: int, timeout: float) -> re.Match[str]:
        """The first line from `after` on matching `pattern`."""
        rx = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout
        with self._cv:
            while True:
                for line in self.lines[after:]:
                    if m := rx.search(line):
                        return m
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise SystemExit(f"watcher: no {rx.pattern!r}; output:\n" + "\n".join(self.lines))
                self._cv.wait(0.2)


def until_found(retriever: Any, question: str, doc_id: str, index: Path, timeout: float) -> float:
    """perf_counter() when a search first returns doc_id; searches on each new generation only."""
    from qabot import store
    from qabot.config import SearchOptions
    from qabot.retrieve import search

    stamp = store.manifest_stamp(index)
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        now = store.manifest_stamp(index)
        if now != stamp:
            stamp = now
            if any(p.doc_id == doc_id for p in search(retriever, question, SearchOptions(k=5), floor=False)):
                return time.perf_counter()
        time.sleep(0.02)
    raise SystemExit(f"{doc_id} not answerable within {timeout} s")


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Prepare, start the watcher, add articles one by one, clean up; all figures."""
    from qabot.reader import Retriever
    from qabot.retrieve import search

    sources = sorted((args.scifact / "corpus").glob("*.txt"))
    if args.existing is not None:
        from qabot import store

        root, first = args.existing, 0
        seeds, index = root / "seeds", root / "index"
        manifest = store.load_manifest(index)
        if manifest is None:
            raise SystemExit(f"no index in {index}")
        args.articles = manifest.article_count
        corpus = {"reused": True, "committed_at": manifest.committed_at, "build_s": None,
                  "passages": manifest.passage_count}
    else:
        if not 1 <= args.articles <= len(sources) - args.additions:
            raise SystemExit(f"--articles must be between 1 and {len(sources) - args.additions}")
        root, first = args.workdir / f"qabot-watch-bench-{args.articles}", args.articles
        seeds, index = root / "seeds", root / "index"
        corpus = prepare(sources, root, args.articles, args.fresh)

    watcher = WatchProcess(seeds, index)
    started = time.perf_counter()
    watcher.wait_for("Watching", 0, timeout=600)
    startup_s = time.perf_counter() - started
    retriever = Retriever(index)
    search(retriever, "warm-up question", floor=False)  # load the encoder and the snapshot before timing

    runs: list[dict[str, Any]] = []
    added: list[Path] = []
    try:
        for i, src in enumerate(sources[first : first + args.additions]):
            text = src.read_text(encoding="utf-8")
            title = text.strip().splitlines()[0]
            path = seeds / f"watchbench-{src.name}"
            mark = len(watcher.lines)
            with path.open("w", encoding="utf-8") as f:
                f.write(PREFIX + text)
            closed = time.perf_counter()
            added.append(path)
            found = until_found(retriever, title, path.name, index, timeout=120)
            commit = watcher.wait_for(COMMIT, mark, timeout=30)
            runs.append({"doc_id": path.name, "answerable_s": found - closed,
                         "run_index_s": float(commit[3])})
            log(f"   {i + 1}/{args.additions}: answerable after {found - closed:.2f} s "
                f"(run_index {commit[3]} s)")
            time.sleep(1.0)  # let each addition be its own batch
    finally:
        mark = len(watcher.lines)
        for path in added:
            path.unlink(missing_ok=True)
        if added:
            watcher.wait_for(rf"Indexed {args.articles} articles", mark, timeout=120)
        watcher.proc.send_signal(signal.SIGTERM)
        code = watcher.proc.wait(60)
    if code != 0:
        raise SystemExit(f"the watcher exited with {code}")
    latencies = [r["answerable_s"] for r in runs]
    commits = [r["run_index_s"] for r in runs]
    return {
        "config": {"articles": args.articles, "additions": args.additions, "cpus": os.cpu_count(),
                   "seeds": str(seeds), "index": str(index), "loadavg_1m_at_end": os.getloadavg()[0],
                   "date": dt.datetime.now().isoformat(timespec="seconds")},
        "corpus": corpus,
        "watcher_startup_s": startup_s,
        "answerable_s": {"median": statistics.median(latencies), "min": min(latencies),
                         "max": max(latencies), "target": TARGET_S,
                         "passed": statistics.median(latencies) < TARGET_S},
        "run_index_s": {"median": statistics.median(commits), "min": min(commits), "max": max(commits)},
        "runs": runs,
    }


def report(r: dict[str, Any]) -> str:
    """The human-readable table."""
    c, corpus, a, ri = r["config"], r["corpus"], r["answerable_s"], r["run_index_s"]
    how = (f"reused from an earlier run (last committed {corpus['committed_at']})" if corpus["reused"]
           else f"built now in {corpus['build_s']:.0f} s")
    rows = [
        ("index", f"{c['articles']:,} articles, {corpus['passages']:,} passages, {how}"),
        ("watcher start (no-op index)", f"{r['watcher_startup_s']:.1f} s"),
        (f"new article → answerable (median of {c['additions']})",
         f"{a['median']:.2f} s   [target < {a['target']:.0f} s: {'PASS' if a['passed'] else 'MISS'}]"),
        ("  min / max", f"{a['min']:.2f} s / {a['max']:.2f} s"),
        ("  of which run_index (median, min-max)",
         f"{ri['median']:.2f} s ({ri['min']:.1f}-{ri['max']:.1f})"),
        ("machine", f"{c['cpus']} CPUs, 1-min load average at the end {c['loadavg_1m_at_end']:.1f}"),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def main() -> None:
    """Parse flags, measure, print."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=2000, help="corpus size (default 2000)")
    parser.add_argument("--additions", type=int, default=10, help="articles added one by one (10)")
    parser.add_argument("--scifact", type=Path, default=DEFAULT_SCIFACT, help="SciFact folder")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp"), help="where the corpus is kept")
    parser.add_argument("--fresh", action="store_true", help="rebuild the cached index")
    parser.add_argument("--existing", type=Path, default=None,
                        help="watch ROOT/seeds and ROOT/index as they are (e.g. scale.py's --dir)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    results = measure(args)
    print(json.dumps(results, indent=2) if args.json else report(results))


if __name__ == "__main__":
    main()
