"""Embedding progress as text: rate, ETA, and when a line is written (a fake clock, no sleeps)."""

from __future__ import annotations

import io

import pytest

from qabot.progress import LogLines, Reporter, bar_line, duration, finished, speed, status


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0s"), (0.4, "0s"), (59.4, "59s"), (60, "1m 00s"), (328, "5m 28s"), (3599, "59m 59s"),
    (3600, "1h 00m"), (2 * 3600 + 5 * 60 + 59, "2h 05m"), (-3, "0s"),
])
def test_duration(seconds: float, text: str) -> None:
    assert duration(seconds) == text


def test_speed_keeps_a_decimal_only_when_it_matters() -> None:
    assert (speed(53.4), speed(5.26), speed(1204.2)) == ("53/s", "5.3/s", "1,204/s")


def test_status_gives_the_average_rate_and_the_time_left_at_it() -> None:
    # 1,060 passages in 20 s is 53/s; 17,591 left at 53/s is 331.9 s
    assert status(1060, 18651, 20.0) == "1,060/18,651 passages · 53/s · ETA 5m 32s"
    assert status(1, 4, 2.0, noun="articles") == "1/4 articles · 0.5/s · ETA 6s"


def test_status_has_no_rate_before_anything_is_done_and_no_eta_once_all_is() -> None:
    assert status(0, 18651, 12.0) == "0/18,651 passages"
    assert status(500, 18651, 0.0) == "500/18,651 passages"
    assert status(7, 7, 2.0) == "7/7 passages · 3.5/s"
    assert finished(18651, 350.0) == "done, 18,651 passages in 5m 50s · 53/s"


@pytest.mark.parametrize("columns", [20, 40, 60, 80, 200])
def test_the_bar_line_never_reaches_the_margin(columns: int) -> None:
    line = bar_line("Embedding", 1060, 18651, 20.0, columns)
    assert len(line) <= columns - 1
    assert line.endswith("passages · 53/s · ETA 5m 32s") or columns < 50
    if columns >= 80:
        assert line.startswith("Embedding   6% █") and "░" in line


def test_off_a_terminal_one_line_every_few_seconds_and_a_last_one() -> None:
    out, clock = io.StringIO(), Clock()
    report = Reporter(out, tty=False, every=5.0, clock=clock)
    for at, done in [(0, 0), (1, 100), (4.9, 490), (5, 500), (6, 600), (10.5, 1050), (12, 1200)]:
        clock.now = 100.0 + at
        report(done, 1200)
    assert out.getvalue().splitlines() == [
        "Embedding: 0/1,200 passages",          # at once: the build is under way
        "Embedding: 500/1,200 passages · 100/s · ETA 7s",
        "Embedding: 1,050/1,200 passages · 100/s · ETA 2s",
        "Embedding: done, 1,200 passages in 12s · 100/s",
    ]
    assert "\r" not in out.getvalue() and "\x1b" not in out.getvalue()


def test_the_clock_starts_at_the_first_call_and_again_for_the_next_job() -> None:
    out, clock = io.StringIO(), Clock()
    report = Reporter(out, tty=False, clock=clock)
    clock.now = 500.0  # model loading, chunking...: not embedding time
    report(0, 10)
    clock.now = 502.0
    report(10, 10)
    clock.now = 900.0
    report(0, 30)
    clock.now = 903.0
    report(30, 30)
    assert out.getvalue().splitlines() == [
        "Embedding: 0/10 passages", "Embedding: done, 10 passages in 2s · 5.0/s",
        "Embedding: 0/30 passages", "Embedding: done, 30 passages in 3s · 10/s",
    ]


def test_on_a_terminal_a_bar_redrawn_in_place_then_cleared_for_the_last_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "100")  # what shutil.get_terminal_size reads first
    out, clock = io.StringIO(), Clock()
    report = Reporter(out, tty=True, clock=clock)
    for at, done in [(0, 0), (0.1, 10), (1, 100), (2, 200)]:
        clock.now = 100.0 + at
        report(done, 200)
    # 0 and 100 are drawn; 10 came 0.1 s after the last draw, too soon to redraw
    bars = [d for d in out.getvalue().split("\r") if d.startswith("Embedding ")]
    assert len(bars) == 2
    assert bars[0].endswith(" 0/200 passages\x1b[K") and "  0% ░" in bars[0]
    assert bars[1].endswith(" 100/200 passages · 100/s · ETA 1s\x1b[K") and " 50% █" in bars[1]
    assert out.getvalue().endswith("\r\x1b[KEmbedding: done, 200 passages in 2s · 100/s\n")
    assert out.getvalue().count("\n") == 1


def test_close_clears_a_bar_left_half_way_and_only_then() -> None:
    out, clock = io.StringIO(), Clock()
    report = Reporter(out, tty=True, clock=clock)
    report.close()
    assert out.getvalue() == ""
    report(0, 200)
    report.close()
    assert out.getvalue().endswith("\r\x1b[K")
    length = len(out.getvalue())
    report.close()
    assert len(out.getvalue()) == length


def test_a_job_shorter_than_after_says_nothing_and_a_longer_one_speaks_from_then_on() -> None:
    """The watcher's reporter: a one-article commit is silent, its first build is not."""
    out, clock = io.StringIO(), Clock()
    report = Reporter(out, tty=False, every=5.0, after=3.0, clock=clock)
    for at, done in [(0, 0), (2.9, 12)]:  # a short job, over within 3 s
        clock.now = 100.0 + at
        report(done, 12)
    assert out.getvalue() == ""
    for at, done in [(50, 0), (52, 200), (53, 300), (57, 700), (58, 800), (60, 1000)]:
        clock.now = 100.0 + at
        report(done, 1000)
    assert out.getvalue().splitlines() == [
        "Embedding: 300/1,000 passages · 100/s · ETA 7s",  # the clock started at 50, not at 0
        "Embedding: 800/1,000 passages · 100/s · ETA 2s",
        "Embedding: done, 1,000 passages in 10s · 100/s",
    ]


def test_close_ends_a_job_left_half_way_so_the_next_starts_its_own_clock() -> None:
    out, clock = io.StringIO(), Clock()
    report = Reporter(out, tty=False, clock=clock)
    report(0, 100)
    clock.now += 60.0
    report(50, 100)  # then the run fails: the watcher closes and retries
    report.close()
    clock.now += 1000.0
    report(0, 100)
    clock.now += 4.0
    report(100, 100)
    assert out.getvalue().splitlines()[-1] == "Embedding: done, 100 passages in 4s · 25/s"


def test_log_lines_hands_each_whole_line_to_the_log() -> None:
    logged: list[str] = []
    sink = LogLines(logged.append)
    assert sink.write("Embedding: 1") == 12 and logged == []
    sink.write("0/20 passages\nEmbedding: done\n\nand a rest")
    assert logged == ["Embedding: 10/20 passages", "Embedding: done"]
    assert not sink.isatty()


def test_a_reporter_on_a_log_writes_plain_lines_never_a_bar() -> None:
    logged: list[str] = []
    clock = Clock()
    report = Reporter(LogLines(logged.append), clock=clock)  # tty left to the stream: no
    for at, done in [(0, 0), (5, 500), (10, 1000)]:
        clock.now = 100.0 + at
        report(done, 1000)
    report.close()
    assert logged == ["Embedding: 0/1,000 passages", "Embedding: 500/1,000 passages · 100/s · ETA 5s",
                      "Embedding: done, 1,000 passages in 10s · 100/s"]
