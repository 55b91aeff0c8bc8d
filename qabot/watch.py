"""Keep the index in step with the seeds folder: watch it, debounce, and run the indexer.

Every change goes through `run_index`, the same incremental, locked, generation-committed path
as `qabot index`, so a watcher can be killed at any moment and the index stays whole.

Debounce, in the worker thread (see docs/watch.md):

1. an event on a `*.txt` article (not hidden, not inside the index folder) marks it pending;
2. nothing happens until the folder has been quiet for `quiet_period` seconds — a burst of
   1,000 copied files or an editor's save-rename dance becomes one batch;
3. a file that was written to and not yet closed (inotify reports the close) holds the batch,
   for at most `max_hold` seconds after its last write: a writer that pauses is not read
   half-way;
4. the pending paths' (size, mtime) are looked at twice, `settle` seconds apart, the second look
   as the quiet period ends; any difference, or any new event meanwhile, starts the wait again;
5. `run_index` brings the index in line with the whole folder; events that arrive while it runs
   form the next batch. A failed run (disk full, index folder read-only…) is logged and tried
   again after 1 s, then 2, 4… up to 60 s while it keeps failing: a change is never left
   unindexed waiting for another one.

A stream of changes that never pauses still gets a commit every `max_delay` seconds (steps 3
and 4 still apply), so a busy folder cannot starve the index.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from types import FrameType
from typing import Any

from watchdog.events import FileSystemEvent, FileSystemEventHandler

from .config import Settings
from .errors import QabotError, SeedsNotFound
from .indexer import Report, run_index
from .progress import Reporter

Log = Callable[[str], None]
Stat = tuple[int, int] | None  # (size, mtime_ns), None when the path is gone

logger = logging.getLogger(__name__)

# A commit of a few changed articles takes well under this; only a longer run (the first build,
# a rebuild, a big batch) is worth progress lines between the watcher's own.
PROGRESS_AFTER_S = 3.0


def print_line(msg: str) -> None:
    """Print and flush, so a pipe (journald, a test) sees each line as it happens."""
    print(msg, flush=True)


def stamp(msg: str) -> str:
    """The message with a local-time prefix."""
    return f"{time.strftime('%Y-%m-%d %H:%M:%S')} {msg}"


def is_article_path(root: str, path: str, is_directory: bool = False) -> bool:
    """Whether an event on `path` can change the articles below `root` (same rule as read_corpus:
    `*.txt`, no hidden part). A directory counts: moving or deleting it moves or deletes articles."""
    rel = os.path.relpath(path, root)
    if rel == "." or rel == ".." or rel.startswith(".." + os.sep):
        return False
    if any(part.startswith(".") for part in Path(rel).parts):
        return False  # hidden files, editors' swap files, rsync's temporary .name.XXXXXX
    return is_directory or rel.endswith(".txt")


def look(paths: Iterable[str]) -> dict[str, Stat]:
    """(size, mtime_ns) of each path, None for a missing one."""
    out: dict[str, Stat] = {}
    for p in paths:
        try:
            st = os.stat(p)
        except OSError:
            out[p] = None
        else:
            out[p] = (st.st_size, st.st_mtime_ns)
    return out


class Watcher:
    """Watches the seeds folder and commits every change through `run_index`, off the caller's thread.

    `start()` returns at once (the first index runs in the worker thread); `stop()` ends it;
    `run_forever()` is the CLI's loop, ended by SIGINT or SIGTERM. `progress` is told how the
    embedding of every run goes (give it `after=PROGRESS_AFTER_S`, so short runs stay quiet).
    """

    def __init__(
        self,
        settings: Settings,
        log: Log = print_line,
        *,
        quiet: bool = False,
        rebuild: bool = False,
        timestamps: bool = True,
        progress: Reporter | None = None,
        quiet_period: float = 0.5,
        settle: float = 0.2,
        max_hold: float = 15.0,
        max_delay: float = 10.0,
        grace: float = 10.0,
        retry: float = 1.0,
        max_retry: float = 60.0,
    ) -> None:
        self.settings = settings
        self._log = log
        self._quiet = quiet
        self._rebuild = rebuild
        self._timestamps = timestamps  # off when the log sink (logging) adds its own
        self._progress = progress
        self.quiet_period, self.settle, self.max_hold = quiet_period, settle, max_hold
        self.max_delay, self.grace = max_delay, grace
        self.retry, self.max_retry = retry, max_retry
        self._backoff = 0.0  # the last wait before a retry; 0 after a run that worked
        self._not_before = 0.0  # monotonic time before which no batch starts (a retry's wait)
        self._retry_rebuild = False  # the failed run was a rebuild: so is its retry
        # The first run reads every file (run_index verify): an edit made while no watcher ran
        # may have kept the file's whole stat (an in-place mmap write), which no event reports.
        self._verified = False
        self._root = str(settings.seeds.resolve())
        self._index_root = str(settings.index.resolve())
        self._cond = threading.Condition()
        self._pending: dict[str, float] = {}  # path -> monotonic time of its first event in the batch
        self._writing: dict[str, float] = {}  # written to, not yet closed -> time of the last write
        self._last_event = 0.0
        self._stopping = False
        self._tracks_closes = False
        self._observer: Any = None
        self._thread: threading.Thread | None = None
        self._reported: set[tuple[str, str]] = set()
        self.commits = 0
        self.busy = False  # True while run_index runs
        self.lost = threading.Event()  # the seeds folder itself was deleted or moved away
        self.ready = threading.Event()  # set once the first index run has finished (well or not)
        # Set while the worker waits with no change pending, cleared by the next change noted:
        # what "nothing more is coming" means, for whoever must wait for it (tests, tools).
        self.idle = threading.Event()
        # Set while a batch whose quiet period is over waits for a writer to close its file (step 3).
        self.holding = threading.Event()
        self.last_report: Report | None = None
        self._alarm = _OverflowAlarm(self)

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start watching and indexing in background threads; SeedsNotFound if there is no folder."""
        from watchdog.observers import Observer

        if not self.settings.seeds.is_dir():
            raise SeedsNotFound(
                f"seeds folder {self.settings.seeds} does not exist; create it or point --seeds / "
                "QABOT_SEEDS at one, then start the watcher again"
            )
        observer = Observer()
        # Only inotify (Linux) reports that a writer closed its file; elsewhere (FSEvents, polling
        # fallback) the quiet period and the two looks have to do.
        self._tracks_closes = type(observer).__name__ == "InotifyObserver"
        observer.schedule(_Handler(self), self._root, recursive=True, event_filter=_event_types())
        observer.daemon = True
        logging.getLogger(_INOTIFY_LOGGER).addHandler(self._alarm)
        # Watch before the first index, so nothing written during it is missed.
        observer.start()
        self._observer = observer
        self._thread = threading.Thread(target=self._work, name="qabot-watch", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> bool:
        """Stop watching; wait up to `timeout` s for a commit in progress. True when all is stopped."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        logging.getLogger(_INOTIFY_LOGGER).removeHandler(self._alarm)
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout)
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    def run_forever(self) -> int:
        """Index, then watch until SIGINT/SIGTERM (a second one abandons a commit); the exit status."""
        signals: list[int] = []
        wake = threading.Event()

        def on_signal(signum: int, frame: FrameType | None) -> None:
            signals.append(signum)
            wake.set()
            if len(signals) > 1:
                self._abandon()

        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            self.start()
            while not wake.wait(1.0) and not self.lost.is_set():
                pass
            if self.lost.is_set() and not signals:
                self.stop(self.grace)
                self.log(f"Error: the seeds folder {self.settings.seeds} is gone; stopped watching "
                         "(the index is left as it is). Start the watcher again when it is back.")
                return 1
            if self.busy:
                self.log(f"{signal.Signals(signals[0]).name}: finishing the commit in progress "
                         "(signal again to abandon it)…")
            if not self.stop(self.grace):
                self._abandon()
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
        self.log(f"Stopped watching {self.settings.seeds} after {self._commits()}.")
        return 0

    def _abandon(self) -> None:
        """Exit now, mid-commit: safe, since the rename of manifest.json is the commit."""
        self.log("Abandoned the commit in progress; the index stays at its previous generation. "
                 f"Stopped watching {self.settings.seeds} after {self._commits()}.")
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)

    def _commits(self) -> str:
        return f"{self.commits} commit" + ("" if self.commits == 1 else "s")

    def log(self, msg: str) -> None:
        """One (timestamped) line to the log sink."""
        self._log(stamp(msg) if self._timestamps else msg)

    # ------------------------------------------------------------ events (observer thread)

    def note(self, kind: str, src: str, dest: str = "", is_directory: bool = False) -> None:
        """Record one file-system event: `kind` is watchdog's event_type."""
        if is_directory and kind in ("deleted", "moved") and os.path.relpath(src, self._root) == ".":
            self.lost.set()
        paths = [p for p in (src, dest) if p and self._matters(p, is_directory)]
        if not paths:
            return
        with self._cond:
            now = time.monotonic()
            if not is_directory and self._tracks_closes:
                if kind == "modified":
                    self._writing[src] = now
                elif kind in ("closed", "deleted", "moved"):
                    self._writing.pop(src, None)
            self._mark(paths, now)

    def rescan(self) -> None:
        """Re-read the whole folder after the quiet period (for when events were lost)."""
        with self._cond:
            self._mark([self._root], time.monotonic())

    def _mark(self, paths: list[str], now: float) -> None:
        for p in paths:
            self._pending.setdefault(p, now)
        self._last_event = now
        self.idle.clear()
        self._cond.notify_all()

    def _matters(self, path: str, is_directory: bool) -> bool:
        inside_index = os.path.relpath(path, self._index_root).split(os.sep, 1)[0] != ".."
        return not inside_index and is_article_path(self._root, path, is_directory)

    # ------------------------------------------------------------ worker thread

    def _work(self) -> None:
        try:
            self._cycle([], rebuild=self._rebuild)
        finally:
            self.ready.set()
        self.log(f"Watching {self.settings.seeds} for changes (Ctrl-C to stop)…")
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            self._cycle(batch, rebuild=self._retry_rebuild)

    def _next_batch(self) -> list[str] | None:
        """Block until a batch of changes is complete and stable; None when stopping."""
        with self._cond:
            while True:
                if self._stopping:
                    return None
                if not self._pending:
                    self.idle.set()
                    self._cond.wait()
                    continue
                now = time.monotonic()
                if now < self._not_before:  # backing off after a failed run
                    self._cond.wait(self._not_before - now)
                    continue
                overdue = now - min(self._pending.values()) >= self.max_delay
                # The first look comes `settle` s before the quiet period ends, the second as it ends.
                quiet_left = self._last_event + self.quiet_period - now
                if quiet_left > self.settle and not overdue:
                    self._cond.wait(min(quiet_left - self.settle, self.max_delay))
                    continue
                held = [h for h in (t + self.max_hold - now for t in self._writing.values()) if h > 0]
                if held:
                    self.holding.set()
                    self._cond.wait(min(held))  # a close event wakes us sooner
                    continue
                self.holding.clear()
                first, mark = look(self._pending), self._last_event
                self._cond.wait(self.settle)
                if self._stopping:
                    return None
                if self._last_event != mark and not overdue:
                    continue  # more events: wait for quiet again
                if look(first) != first:
                    self._last_event = time.monotonic()  # changing without events (e.g. NFS)
                    continue
                for p in first:
                    del self._pending[p]
                now = time.monotonic()
                # What is left here outlived max_hold (a lost close event): stop waiting for it.
                self._writing = {p: t for p, t in self._writing.items() if t + self.max_hold > now}
                return sorted(first)

    def _cycle(self, batch: list[str], rebuild: bool = False) -> None:
        """One run of the indexer; never raises."""
        self.busy = True
        try:
            report = self._run_index(rebuild)
        except QabotError as err:
            self._retry_later(batch, rebuild, f"Error: {err}")
            return
        except Exception as err:  # a watcher must outlive any one bad cycle
            logger.debug("indexing cycle failed", exc_info=True)
            self._retry_later(batch, rebuild, f"Error: indexing failed ({type(err).__name__}: {err})")
            return
        finally:
            self.busy = False
        self._backoff, self._retry_rebuild = 0.0, False
        self.last_report = report
        skipped = {(b.doc_id, b.reason) for b in report.skipped}
        for doc_id, reason in sorted(skipped - self._reported):
            self.log(f"Skipped {doc_id}: {reason}")
        self._reported = skipped
        if report.committed:
            self.commits += 1
            self.log(report.summary() + (f" — {self._describe(batch)}" if batch else ""))
        elif not batch:
            self.log(report.summary())  # the first run: say the index is up to date

    def _run_index(self, rebuild: bool) -> Report:
        try:
            report = run_index(self.settings, rebuild=rebuild,
                               log=(lambda msg: None) if self._quiet else self.log,
                               progress=self._progress, verify=not self._verified)
            self._verified = True
            return report
        finally:
            if self._progress is not None:
                self._progress.close()  # a failed run's bar: its error gets a line of its own

    def _retry_later(self, batch: list[str], rebuild: bool, error: str) -> None:
        """Log a failed run and put its batch back, to be run again after a wait that doubles
        (from `retry` up to `max_retry` s) while runs keep failing: the cause (a full disk…) may
        clear without any file changing, and retrying at once would only fail again."""
        self._backoff = min(self.max_retry, self._backoff * 2 or self.retry)
        self.log(f"{error}; will try again in {self._backoff:g} s.")
        with self._cond:
            self._retry_rebuild = rebuild
            self._not_before = time.monotonic() + self._backoff
            self._mark(batch or [self._root], time.monotonic())

    def _describe(self, batch: list[str], shown: int = 3) -> str:
        names = ["(whole folder rescanned)" if p == self._root else os.path.relpath(p, self._root)
                 for p in batch]
        more = f" (+{len(names) - shown} more)" if len(names) > shown else ""
        return ", ".join(names[:shown]) + more


_INOTIFY_LOGGER = "watchdog.observers.inotify"


class _OverflowAlarm(logging.Handler):
    """watchdog only *logs* that the kernel's inotify queue overflowed (events were dropped):
    answer it with a rescan of the whole folder, so no change is missed."""

    def __init__(self, watcher: Watcher) -> None:
        super().__init__(logging.WARNING)
        self._watcher = watcher

    def emit(self, record: logging.LogRecord) -> None:
        """Called by logging for each warning of the inotify observer."""
        if "overflow" in record.getMessage().lower():
            self._watcher.log("The kernel dropped file events (inotify queue overflow); "
                              "the whole folder will be read again.")
            self._watcher.rescan()


class _Handler(FileSystemEventHandler):
    """Forwards watchdog events to the Watcher."""

    def __init__(self, watcher: Watcher) -> None:
        self._watcher = watcher

    def dispatch(self, event: FileSystemEvent) -> None:
        """Called on the observer thread for every event that passed the filter."""
        self._watcher.note(event.event_type, os.fsdecode(event.src_path),
                           os.fsdecode(event.dest_path or ""), event.is_directory)


def _event_types() -> list[type]:
    """Events that can change an article. Opens and read-only closes are left out: the indexer's
    own reads would otherwise wake the watcher after every commit."""
    from watchdog import events as ev

    names = ["FileCreatedEvent", "FileModifiedEvent", "FileDeletedEvent", "FileMovedEvent",
             "FileClosedEvent", "FileAttribEvent", "DirCreatedEvent", "DirDeletedEvent",
             "DirMovedEvent"]
    return [getattr(ev, n) for n in names if hasattr(ev, n)]  # FileAttribEvent: watchdog >= 5
