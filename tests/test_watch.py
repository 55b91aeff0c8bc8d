"""`qabot index --watch` end to end (real CLI, real model, real FAISS), and the Watcher the bot runs."""

from __future__ import annotations

import hashlib
import io
import itertools
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from qabot import store
from qabot.config import PathSettings, SearchOptions, Settings
from qabot.progress import Reporter
from qabot.reader import Retriever
from qabot.retrieve import search
from qabot.watch import PROGRESS_AFTER_S, Watcher, is_article_path
from tests.conftest import QABOT, QUESTION, SHIPPED_SEED, run_qabot

COMMIT = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d Indexed (\d+) articles, (\d+) passages \("
                    r"(\d+) added, (\d+) updated, (\d+) removed, \d+ unchanged, \d+ skipped\) in [\d.]+s")


class WatchProcess:
    """`qabot index --watch` in a subprocess, its output collected line by line as it comes."""

    def __init__(self, *args: str, qabot: list[str] = QABOT) -> None:
        self.proc = subprocess.Popen([*qabot, "index", "--watch", *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, env=dict(os.environ))
        self.lines: list[str] = []
        self._seen = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._seen:
                self.lines.append(line.rstrip("\n"))
                self._seen.notify_all()

    def wait_for(self, text: str, timeout: float = 30, after: int = 0) -> int:
        """Index of the first line from `after` on that contains `text`."""
        deadline = time.monotonic() + timeout
        with self._seen:
            while True:
                for i in range(after, len(self.lines)):
                    if text in self.lines[i]:
                        return i
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None and not self._reader.is_alive():
                    raise AssertionError(f"no {text!r} within {timeout} s; output:\n" + self.output())
                self._seen.wait(min(left, 0.5))

    def commits(self, after: int = 0) -> list[re.Match[str]]:
        """The commit lines printed from line `after` on."""
        with self._seen:
            return [m for line in self.lines[after:] if (m := COMMIT.match(line))]

    def added(self, after: int = 0) -> int:
        """Articles added by the commits printed from line `after` on."""
        return sum(int(m[3]) for m in self.commits(after))

    def output(self) -> str:
        with self._seen:
            return "\n".join(self.lines)

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> int:
        """Send `sig` and wait for the exit status."""
        self.proc.send_signal(sig)
        code = self.proc.wait(30)
        self._reader.join(5)
        return code


Starter = Callable[..., WatchProcess]


@pytest.fixture
def watch() -> Iterator[Starter]:
    """Start watcher processes; any still running at the end of the test is killed."""
    started: list[WatchProcess] = []

    def start(*args: str, qabot: list[str] = QABOT) -> WatchProcess:
        w = WatchProcess(*args, qabot=qabot)
        started.append(w)
        w.wait_for("Watching", timeout=60)
        return w

    yield start
    for w in started:
        if w.proc.poll() is None:
            w.proc.kill()
            w.proc.wait(10)


def until(check: Callable[[], Any], timeout: float = 10, what: str = "condition") -> float:
    """Poll `check` until it is truthy; the seconds it took. Fails after `timeout`."""
    started = time.monotonic()
    while True:
        if check():
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{what} not met within {timeout} s")
        time.sleep(0.1)


def articles(settings: Settings) -> dict[str, Any]:
    if store.load_manifest(settings.index) is None:
        return {}
    return {a.doc_id: a for a in store.load_snapshot(settings.index).catalog.articles()}


def top_doc(retriever: Retriever, question: str) -> str:
    return search(retriever, question, SearchOptions(k=1), floor=False)[0].doc_id


PENGUINS = (" date 2024-06-01 Emperor penguins in Antarctica huddle together to survive winter "
            "storms. Colonies of up to 5,000 birds were counted by satellite.")
WILDFIRE = " date 2024-06-02 A wildfire near Athens forced thousands to leave their homes."


def test_watcher_follows_additions_edits_renames_and_deletions(
    real_settings: Settings, watch: Starter
) -> None:
    w = watch()
    assert "Indexed 5 articles" in w.output()
    r = Retriever(real_settings.index)
    seeds = real_settings.seeds
    mark = len(w.lines)

    (seeds / "penguins.txt").write_text(PENGUINS)
    until(lambda: top_doc(r, "How do penguins survive the winter?") == "penguins.txt",
          what="new article found")

    (seeds / "penguins.txt").write_text(WILDFIRE)
    until(
        lambda: (
            "wildfire"
            in search(r, "wildfire near Athens evacuations", SearchOptions(k=1), floor=False)[0].text
        ),
        what="edited text found",
    )
    snap = r.snapshot()
    assert not any("penguin" in p.text.lower() for p in snap.passages.values())

    (seeds / "penguins.txt").rename(seeds / "fires.txt")
    until(lambda: "fires.txt" in articles(real_settings) and "penguins.txt" not in articles(real_settings),
          what="rename applied")
    assert top_doc(r, "wildfire near Athens evacuations") == "fires.txt"

    (seeds / "fires.txt").unlink()
    until(lambda: "fires.txt" not in articles(real_settings), what="deletion applied")
    hits = search(r, "wildfire near Athens evacuations", SearchOptions(k=10, per_article=10), floor=False)
    assert all("wildfire" not in p.text for p in hits)

    # a bad file is reported by name and skipped; the watcher carries on
    (seeds / "broken.txt").write_bytes(b"\xff\xfe\xfa not utf-8")
    w.wait_for("Skipped broken.txt: is not valid UTF-8", after=mark)
    (seeds / "world" / "late.txt").write_text(PENGUINS)
    until(lambda: "world/late.txt" in articles(real_settings), what="article after a bad file")

    w.wait_for("— world/late.txt", after=mark)  # the line comes just after the commit itself
    commits = w.commits(after=mark)
    assert [(m[3], m[4], m[5]) for m in commits] == [
        ("1", "0", "0"),
        ("0", "1", "0"),
        ("1", "0", "1"),
        ("0", "0", "1"),
        ("1", "0", "0"),
    ]
    assert commits[0].string.endswith("— penguins.txt")
    assert w.stop(signal.SIGTERM) == 0
    assert w.lines[-1].endswith(f"Stopped watching {seeds} after 6 commits.")  # the first index counts
    assert "Traceback" not in w.output()


def test_a_burst_of_200_articles_becomes_a_few_commits(
    real_settings: Settings, tmp_path: Path, watch: Starter
) -> None:
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    topics = {
        0: "A volcano erupted in Iceland, sending lava towards the fishing town of Grindavik.",
        100: "The chess world championship ended in a draw after fourteen games in Astana.",
        199: "Emperor penguins huddle together in Antarctica to survive the winter storms.",
    }
    for i in range(200):
        text = topics.get(i, f"Bulletin {i}: the council discussed budget line {i} for road repairs.")
        (incoming / f"burst{i:03d}.txt").write_text(f" date 2024-03-{i % 28 + 1:02d} {text}")
    w = watch()
    mark = len(w.lines)
    for f in sorted(incoming.iterdir()):  # a copy that takes a second, like rsync over a network
        (real_settings.seeds / f.name).write_bytes(f.read_bytes())
        time.sleep(0.005)
    until(lambda: len(articles(real_settings)) == 205, timeout=60, what="all 200 indexed")
    r = Retriever(real_settings.index)
    assert top_doc(r, "Which volcano erupted near Grindavik?") == "burst000.txt"
    assert top_doc(r, "Who won the chess championship in Astana?") == "burst100.txt"
    assert top_doc(r, "How do penguins survive the winter?") == "burst199.txt"
    until(lambda: w.added(after=mark) == 200, what="the commit lines")
    commits = w.commits(after=mark)
    assert 1 <= len(commits) <= 3, w.output()
    assert w.stop(signal.SIGINT) == 0
    assert "Stopped watching" in w.lines[-1]


def test_a_file_written_slowly_is_never_indexed_half_written(real_settings: Settings, watch: Starter) -> None:
    w = watch()
    mark = len(w.lines)
    seen: dict[str, set[str]] = {}  # doc_id -> every content hash a committed generation held
    done = threading.Event()

    def observe() -> None:  # look at every generation the watcher commits
        stamp = None
        while not done.is_set():
            if store.manifest_stamp(real_settings.index) != stamp:
                stamp = store.manifest_stamp(real_settings.index)
                for doc, meta in articles(real_settings).items():
                    seen.setdefault(doc, set()).add(meta.hash)
            time.sleep(0.02)

    observer = threading.Thread(target=observe)
    observer.start()
    pieces = [f"Piece {i} of a long report on the harbour works, written in parts. " for i in range(4)]
    full = " date 2024-05-05 " + "".join(pieces)
    try:
        # 1. one open file, written in pieces 0.3 s apart (inside the quiet period)
        with (real_settings.seeds / "slow1.txt").open("w") as f:
            f.write(" date 2024-05-05 ")
            for piece in pieces:
                f.write(piece)
                f.flush()
                time.sleep(0.3)
        # 2. reopened and appended to each time (no open file between pieces)
        path = real_settings.seeds / "slow2.txt"
        path.write_text(" date 2024-05-05 ")
        for piece in pieces:
            time.sleep(0.3)
            with path.open("a") as f:
                f.write(piece)
        # 3. one open file that pauses longer than the quiet period: the open writer holds the batch
        with (real_settings.seeds / "slow3.txt").open("w") as f:
            f.write(" date 2024-05-05 " + pieces[0])
            f.flush()
            time.sleep(1.5)
            f.write("".join(pieces[1:]))
        expected = hashlib.sha256(full.encode()).hexdigest()
        names = ("slow1.txt", "slow2.txt", "slow3.txt")
        until(lambda: all(getattr(articles(real_settings).get(n), "hash", None) == expected for n in names),
              what="slow files indexed")
        time.sleep(0.2)
    finally:
        done.set()
        observer.join()
    for name in names:
        assert (real_settings.seeds / name).read_text() == full
        assert seen[name] == {expected}, f"{name} was committed half-written"
    until(lambda: w.added(after=mark) == 3, what="the commit lines")
    commits = w.commits(after=mark)
    assert all(m[4] == "0" for m in commits), w.output()  # nothing indexed twice


def _big_batch(seeds: Path, n: int) -> None:
    """n distinct multi-passage articles: enough to keep the embedder busy for a few seconds."""
    base = SHIPPED_SEED.read_text().split(" ", 3)[3]
    for i in range(n):
        (seeds / f"bulk{i:03d}.txt").write_text(f" date 2022-01-{i % 28 + 1:02d} Story {i}. " + base)


# The real CLI, held inside its second commit (the watcher's first batch) once every file of the new
# generation is written and fsynced, its folder's manifest copy last, and only the rename of
# manifest.json is left: the test kills it there.
HELD_IN_COMMIT = """
import sys, threading
from qabot import store
real = store.fsync_path
def fsync_path(path):
    real(path)
    if path.name == "gen-000002":  # _seal's last fsync: the folder holding the manifest copy
        print("Holding the commit of gen-000002", flush=True)
        threading.Event().wait()
store.fsync_path = fsync_path
from qabot.cli import main
sys.argv[0] = "qabot"
main()
"""


def test_killed_mid_commit_then_restarted_catches_up(real_settings: Settings, watch: Starter) -> None:
    """SIGKILL inside the commit, at its last moment (the generation whole on disk, the manifest
    not yet renamed): the previous generation stays current and answers; a restarted watcher
    indexes the batch again, the orphaned folder removed first. (test_segments kills at every fsync.)"""
    python = str(Path(QABOT[0]).parent / "python")
    w = watch(qabot=[python, "-c", HELD_IN_COMMIT])
    manifest = real_settings.index / "manifest.json"
    before = manifest.read_bytes()
    mark = len(w.lines)
    _big_batch(real_settings.seeds, 20)
    w.wait_for("Holding the commit of gen-000002", after=mark, timeout=120)
    orphan = real_settings.index / "gen-000002"
    assert (orphan / "manifest.json").is_file()  # written whole: only the commit's rename is left
    w.proc.kill()
    w.proc.wait(10)
    (orphan / "left by the killed run").touch()
    assert not w.commits(after=mark) and manifest.read_bytes() == before
    assert len(articles(real_settings)) == 5
    top = search(Retriever(real_settings.index), QUESTION, SearchOptions(k=1), floor=False)[0]
    assert "Aghdam-Khankendi" in top.text

    again = watch()
    (first,) = again.commits()
    assert first[3] == "20" and first[1] == "25"
    assert len(articles(real_settings)) == 25
    # the dead run's folder was removed before its number was used again
    assert not (orphan / "left by the killed run").exists()
    assert again.stop(signal.SIGTERM) == 0


def test_watch_on_a_missing_seeds_folder_is_one_error_line(tmp_path: Path) -> None:
    proc = run_qabot("index", "--watch", "--seeds", str(tmp_path / "nowhere"))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("Error: seeds folder") and "does not exist" in proc.stderr


# ---------------------------------------------------------------- the Watcher, in process (the bot's way)


def test_in_process_watcher_answers_during_commits_and_survives_a_failed_cycle(
    real_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    import qabot.watch

    lines: list[str] = []
    calls = {"n": 0}
    real_run_index = qabot.watch.run_index

    def flaky(*args: Any, **kw: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:  # the first cycle after the initial index
            raise RuntimeError("disk on fire")
        return real_run_index(*args, **kw)

    monkeypatch.setattr(qabot.watch, "run_index", flaky)
    watcher = Watcher(real_settings, log=lines.append, quiet_period=0.3, settle=0.1)
    watcher.start()
    try:
        assert watcher.ready.wait(60)
        r = Retriever(real_settings.index)
        (real_settings.seeds / "penguins.txt").write_text(PENGUINS)
        until(lambda: any("disk on fire" in line for line in lines), what="failed cycle logged")
        assert "penguins.txt" not in articles(real_settings)
        # Retried a second later with no other file event: the change is not left unindexed.
        until(lambda: "penguins.txt" in articles(real_settings), timeout=30, what="failed cycle retried")
        # The summary is logged after the commit that made it visible: wait for it too.
        until(lambda: any(line.endswith("— penguins.txt") for line in lines), what="retry's commit logged")

        # The next change is a big one; questions are answered all through its commit.
        answered_while_busy, errors = [], []
        stop = threading.Event()

        def ask() -> None:
            while not stop.is_set():
                try:
                    busy = watcher.busy
                    hits = search(r, QUESTION, SearchOptions(k=1), floor=False)
                    if busy and watcher.busy and hits:
                        answered_while_busy.append(hits[0].doc_id)
                except Exception as err:  # pragma: no cover - the assertion below shows it
                    errors.append(err)
                time.sleep(0.05)

        asker = threading.Thread(target=ask)
        asker.start()
        _big_batch(real_settings.seeds, 10)
        until(lambda: len(articles(real_settings)) == 16, timeout=60, what="retried and caught up")
        stop.set()
        asker.join()
        assert not errors and answered_while_busy
        assert top_doc(r, "How do penguins survive the winter?") == "penguins.txt"
    finally:
        assert watcher.stop(timeout=30)
    assert not watcher.busy and watcher.commits >= 1
    errors_logged = [line for line in lines if "Error:" in line]
    assert len(errors_logged) == 1 and "RuntimeError: disk on fire" in errors_logged[0]
    assert errors_logged[0].endswith("; will try again in 1 s.")


def ticking(step: float) -> Callable[[], float]:
    """A clock that moves `step` seconds at every reading: each progress call comes that long
    after the one before, so every run looks long, whatever the machine does."""
    ticks = itertools.count(0.0, step)
    return lambda: next(ticks)


def test_the_watchers_first_build_reports_its_embedding_progress(real_settings: Settings) -> None:
    """`qabot index --watch` and `qabot bot --watch` used to build their first index in silence."""
    out, lines = io.StringIO(), list[str]()
    progress = Reporter(out, tty=False, after=PROGRESS_AFTER_S, clock=ticking(10.0))
    watcher = Watcher(real_settings, log=lines.append, progress=progress)
    watcher.start()
    try:
        assert watcher.ready.wait(60)
    finally:
        assert watcher.stop(timeout=30)
    report = watcher.last_report
    assert report is not None and report.committed and report.passages_embedded > 0
    n = report.passages_embedded  # one slice: told at 0 s (not yet worth a line) and at 10 s
    assert out.getvalue().splitlines() == [f"Embedding: done, {n:,} passages in 10s · {n / 10:,.1f}/s"]


def test_a_failed_runs_progress_bar_is_cleared_before_its_error_and_the_retry_starts_afresh(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import qabot.watch
    from qabot.indexer import Report

    runs: list[int] = []

    def dies_half_way(*args: Any, progress: Any = None, **kw: Any) -> Report:
        runs.append(1)
        progress(0, 100)
        progress(40, 100)
        if len(runs) == 1:
            raise OSError(28, "No space left on device")
        progress(100, 100)
        return Report(committed=True)

    monkeypatch.setattr(qabot.watch, "run_index", dies_half_way)
    monkeypatch.setenv("COLUMNS", "100")
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    out = io.StringIO()  # the terminal: progress and the watcher's lines share it
    progress = Reporter(out, tty=True, after=PROGRESS_AFTER_S, clock=ticking(10.0))
    def say(line: str) -> None:
        out.write(line + "\n")

    watcher = Watcher(Settings(paths=PathSettings(seeds=seeds, index=tmp_path / "idx")),
                      log=say, timestamps=False,
                      progress=progress, retry=0.1)
    watcher.start()
    try:
        until(lambda: "Indexed" in out.getvalue(), timeout=10, what="the retry's commit")
    finally:
        assert watcher.stop(timeout=5)
    text = out.getvalue()
    failed, retried = text.split("Error: ", 1)
    assert failed.startswith("\rEmbedding  40% ") and failed.endswith("\r\x1b[K")  # bar, cleared
    assert retried.startswith("indexing failed (OSError: [Errno 28] No space left on device); "
                              "will try again in 0.1 s.\n")
    # The retry's clock starts at its own first call (0, 40 and 100 % at 0, 10 and 20 s),
    # not at the failed run's.
    assert "\r\x1b[KEmbedding: done, 100 passages in 20s · 5.0/s\n" in retried


@pytest.mark.parametrize(
    ("rel", "is_dir", "expected"),
    [
        ("a.txt", False, True),
        ("world/b.txt", False, True),
        ("a.txt~", False, False),
        ("a.txt.swp", False, False),
        (".a.txt.swp", False, False),
        (".a.txt.XyZ123", False, False),  # rsync's temporary file
        (".hidden/a.txt", False, False),
        ("4913", False, False),  # vim's probe file
        ("world", True, True),
        (".git", True, False),
        ("../elsewhere.txt", False, False),
    ],
)
def test_which_paths_are_articles(tmp_path: Path, rel: str, is_dir: bool, expected: bool) -> None:
    root = str(tmp_path / "seeds")
    assert is_article_path(root, os.path.join(root, rel), is_dir) is expected


def test_failed_runs_are_retried_with_a_doubling_wait(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run that fails (disk full…) is run again without any new file event, after a wait that
    doubles up to the maximum while it keeps failing, and resets once a run works."""
    import qabot.watch
    from qabot.indexer import Report

    calls: list[float] = []
    verified: list[bool] = []
    fail = {"times": 4}

    def failing(*args: Any, **kw: Any) -> Report:
        calls.append(time.monotonic())
        verified.append(kw["verify"])
        if len(calls) > 1 and fail["times"]:  # the first run (at start) works
            fail["times"] -= 1
            raise OSError(28, "No space left on device")
        return Report(committed=True)

    monkeypatch.setattr(qabot.watch, "run_index", failing)
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    lines: list[str] = []
    watcher = Watcher(Settings(paths=PathSettings(seeds=seeds, index=tmp_path / "idx")), log=lines.append,
                      timestamps=False, quiet_period=0.05, settle=0.01, retry=0.2, max_retry=0.5)
    watcher.start()
    try:
        assert watcher.ready.wait(5)
        (seeds / "a.txt").write_text("an article")  # the one and only file event
        until(lambda: len(calls) == 6, timeout=10, what="four retries")
        until(lambda: lines[-1].endswith("— a.txt"), timeout=5, what="the retry's commit logged")
        fail["times"] = 1  # a later failure starts again from the first wait
        (seeds / "b.txt").write_text("another")
        until(lambda: len(calls) == 8, timeout=10, what="one more retry")
    finally:
        assert watcher.stop(timeout=5)
    errors = [line for line in lines if line.startswith("Error:")]
    assert [e.rsplit("will try again in ", 1)[1] for e in errors] == [
        "0.2 s.",
        "0.4 s.",
        "0.5 s.",
        "0.5 s.",
        "0.2 s.",
    ]
    assert "OSError: [Errno 28] No space left on device" in errors[0]
    # The run at start reads every file whatever its stat says (an edit made while no watcher
    # ran may have kept it); the runs that follow events trust the signature cache.
    assert verified[0] is True and not any(verified[1:]), verified
    wants = [0.2, 0.4, 0.5, 0.5]  # the last two capped at max_retry
    waits = [b - a for a, b in itertools.pairwise(calls[1:6])]
    assert all(want - 0.05 <= w < want + 1.0 for w, want in zip(waits, wants, strict=True)), waits


def test_debounce_with_a_counting_indexer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The debounce rules alone, fast: run_index replaced by a counter."""
    import logging

    import qabot.watch
    from qabot.indexer import Report

    calls: list[float] = []

    def counting(*args: Any, **kw: Any) -> Report:
        calls.append(time.monotonic())
        return Report(committed=True)

    monkeypatch.setattr(qabot.watch, "run_index", counting)
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    lines: list[str] = []
    watcher = Watcher(Settings(paths=PathSettings(seeds=seeds, index=tmp_path / "idx")), log=lines.append,
                      quiet_period=0.2, settle=0.05, max_hold=600)  # only a close releases a hold
    watcher.start()

    seen: list[str] = []
    note = watcher.note

    def spy(kind: str, src: str, dest: str = "", is_directory: bool = False) -> None:
        note(kind, src, dest, is_directory)
        seen.append(src)

    watcher.note = spy  # type: ignore[method-assign]

    def calm(n: int) -> None:  # exactly n index runs so far, and no more coming
        # Events arrive in order: once the watcher has noted a marker written after the files,
        # it has noted theirs; once it is idle after that, every run they cause has happened.
        marker = str(seeds / f".marker{len(seen)}")
        Path(marker).write_text("x")  # hidden: noted, but never an article
        until(lambda: marker in seen, timeout=5, what="the marker's event")
        until(lambda: watcher.idle.is_set() and not watcher.busy, timeout=5, what="an idle watcher")
        assert len(calls) == n, lines

    try:
        assert watcher.ready.wait(5)
        calm(1)
        for i in range(50):  # a burst: one run
            (seeds / f"{i}.txt").write_text(f"article {i}")
            time.sleep(0.01)
        calm(2)
        (seeds / ".draft.txt.swp").write_text("x")  # hidden, temporary, not an article: nothing
        (seeds / "notes.md").write_text("x")
        (seeds / "4913").write_text("x")
        calm(2)
        with (seeds / "slow.txt").open("w") as f:  # held while the writer has it open …
            f.write("first half")
            f.flush()
            # the quiet period is over and the batch would run, but for the open file
            assert watcher.holding.wait(5) and len(calls) == 2
        calm(3)  # … and indexed once it is closed (max_hold is 10 minutes: the close did it)
        assert not watcher.holding.is_set()
        logging.getLogger("watchdog.observers.inotify").warning("Inotify queue overflowed; …")
        calm(4)  # lost events: the whole folder is read again
        assert lines[-1].endswith("— (whole folder rescanned)")
    finally:
        assert watcher.stop(timeout=5)
    assert not watcher._thread.is_alive()  # type: ignore[union-attr]
