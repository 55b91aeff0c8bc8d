"""How far the embedding of an index build is, as text on stderr or in a log: "1,234/18,651
passages · 53/s · ETA 5m 28s", redrawn in place on a terminal, one line every few seconds anywhere
else."""

from __future__ import annotations

import math
import shutil
import time
from collections.abc import Callable
from typing import Protocol


class Stream(Protocol):
    """Where a Reporter writes: a text file such as sys.stderr, or LogLines."""

    def write(self, text: str, /) -> int: ...
    def flush(self) -> None: ...
    def isatty(self) -> bool: ...


def duration(seconds: float) -> str:
    """A span of time at a glance: "45s", "5m 28s", "2h 05m"."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s // 3600}h {s % 3600 // 60:02d}m"


def speed(per_second: float) -> str:
    """"53/s", "1,204/s"; one decimal below 10, where a whole number would hide the difference."""
    return f"{per_second:,.1f}/s" if per_second < 10 else f"{per_second:,.0f}/s"


def status(done: int, total: int, elapsed: float, noun: str = "passages") -> str:
    """"1,234/18,651 passages · 53/s · ETA 5m 28s"; no rate or ETA until something is done."""
    text = f"{done:,}/{total:,} {noun}"
    if done <= 0 or elapsed <= 0:
        return text
    rate = done / elapsed  # the average since the start: steadier than the last slice's
    text += f" · {speed(rate)}"
    if done < total:
        text += f" · ETA {duration((total - done) / rate)}"
    return text


def finished(total: int, elapsed: float, noun: str = "passages") -> str:
    """"done, 18,651 passages in 5m 50s · 53/s": the line that closes a job."""
    text = f"done, {total:,} {noun} in {duration(elapsed)}"
    return text + (f" · {speed(total / elapsed)}" if elapsed > 0 else "")


def bar_line(label: str, done: int, total: int, elapsed: float, columns: int,
             noun: str = "passages") -> str:
    """The terminal form: "Embedding  42% ████░░░░ 1,234/18,651 passages · …", at most
    `columns - 1` characters (a line that reaches the margin wraps, and \\r then redraws only
    its second half)."""
    text = status(done, total, elapsed, noun)
    fraction = done / total if total else 1.0
    width = min(30, columns - len(label) - len(text) - 8)
    if width < 10:  # too narrow for a bar worth having: the numbers alone
        return f"{label}: {text}"[: columns - 1]
    filled = int(fraction * width)
    return f"{label} {fraction:4.0%} {'█' * filled}{'░' * (width - filled)} {text}"


class Reporter:
    """The `progress` callback of `run_index` (called with passages done and total): on a
    terminal a bar redrawn in place, elsewhere (a log file, CI, a pipe) one plain line every
    `every` seconds, so a long build is never silent and the record is not a wall of \\r.
    Each job ends with a `finished` line. A job that ends within `after` seconds says nothing
    (the watcher's one-article commits); a longer one speaks from then on. Times come from
    `clock`, so tests need no sleeps."""

    def __init__(self, stream: Stream, label: str = "Embedding", *, tty: bool | None = None,
                 every: float = 5.0, after: float = 0.0,
                 clock: Callable[[], float] = time.monotonic, noun: str = "passages") -> None:
        self.stream = stream
        self.label = label
        self.noun = noun
        self.tty = stream.isatty() if tty is None else tty
        # A terminal redraws often enough to look alive; a log gets a line it is worth keeping.
        self.every = 0.2 if self.tty else every
        self.after = after
        self.clock = clock
        self._start: float | None = None
        self._shown = -math.inf
        self._bar = False  # a bar is drawn on the current line

    def __call__(self, done: int, total: int) -> None:
        now = self.clock()
        if self._start is None:
            self._start = now  # the first call starts the job's clock, so model loading is not counted
        elapsed = now - self._start
        if elapsed < self.after:
            if done >= total:  # over before it was worth a line
                self._start = None
            return
        if done >= total:
            self._write(f"{self.label}: {finished(total, elapsed, self.noun)}\n")
            self._start, self._shown = None, -math.inf
        elif now - self._shown >= self.every:
            self._shown = now
            if self.tty:
                columns = shutil.get_terminal_size().columns
                bar = bar_line(self.label, done, total, elapsed, columns, self.noun)
                self._write("\r" + bar + "\x1b[K", bar=True)
            else:
                self._write(f"{self.label}: {status(done, total, elapsed, self.noun)}\n")

    def close(self) -> None:
        """End a job left half-way (an error or Ctrl-C): clear its bar, so the next message starts
        a clean line, and let the next job (the watcher's retry) start its own clock."""
        if self._bar:
            self._write("", bar=False)
        self._start, self._shown = None, -math.inf

    def _write(self, text: str, bar: bool = False) -> None:
        if self._bar and not bar:
            text = "\r\x1b[K" + text
        self._bar = bar
        self.stream.write(text)
        self.stream.flush()


class LogLines:
    """A Stream that hands each whole line to `log` (a logger's info, say): how a front end
    that writes only through logging (the bot) shows a Reporter's lines. Never a terminal."""

    def __init__(self, log: Callable[[str], None]) -> None:
        self._log = log
        self._partial = ""

    def write(self, text: str, /) -> int:
        """Buffer `text`; log every line it completes."""
        *lines, self._partial = (self._partial + text).split("\n")
        for line in lines:
            if line:
                self._log(line)
        return len(text)

    def flush(self) -> None:
        """Nothing to do: a line is logged as soon as it is whole."""

    def isatty(self) -> bool:
        """Never: log records get the plain line form, not a bar."""
        return False
