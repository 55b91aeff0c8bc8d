"""Formatting for people: control characters in an article never reach a terminal or a chat."""

from __future__ import annotations

import datetime as dt
import json

from hypothesis import given
from hypothesis import strategies as st

from qabot import format as fmt
from qabot.retrieve import Passage, Source

HOSTILE = ("Calm \x1b]0;pwned\x07start. \x1b[2JThe \x1b[1;31manswer\x1b[0m is\r here.\x1bc "
           "Bell\x07 del\x7f c1\x9b2J osc8 \x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\ end\x0cpage.")


def passage(text: str = HOSTILE, title: str = "Title \x1b[2J here",
            doc_id: str = "a\x1b]0;x\x07.txt") -> Passage:
    a = text.index("The")
    return Passage(rank=1, score=0.5, text=text, doc_id=doc_id, path=f"/s/{doc_id}",
                   date=dt.date(2024, 1, 2), title=title, start=10, end=10 + len(text),
                   answer_start=10 + a, answer_end=10 + text.index("here.") + 5,
                   duplicates=(Source(doc_id="b\x1b[2J.txt", path="/s/b\x1b[2J.txt", date=None,
                                      title="t"),))


def no_control(text: str, allowed: str = "\n") -> bool:
    return not any((ord(c) < 0x20 and c not in allowed) or 0x7F <= ord(c) < 0xA0 for c in text)


def test_terminal_output_has_no_control_characters() -> None:
    out = fmt.to_terminal([passage()], bold=("<b>", "</b>"))
    assert no_control(out), repr(out)
    assert "pwned" not in out and "http://x" not in out  # the payload of OSC strings goes too
    assert "<b>The answer is here.</b>" in out
    assert "Calm start." in out and "Bell del c1 osc8 link end page." in out
    assert "Title here" in out and "/s/a.txt" in out and "/s/b.txt" in out


def test_telegram_output_has_no_control_characters() -> None:
    out = fmt.telegram_reply([passage()])
    assert all(no_control(m) for m in out), out
    assert "<b>The answer is here.</b>" in out[0]
    assert no_control(fmt.citation(passage()), allowed="")


def test_json_keeps_the_exact_text_and_escapes_every_control_character() -> None:
    out = fmt.to_json("q", [passage()])
    assert no_control(out), repr(out)
    assert "\\u009b" in out and "\\u007f" in out and "\\u001b" in out
    p = json.loads(out)["passages"][0]
    assert p["text"] == HOSTILE and p["end"] - p["start"] == len(HOSTILE)


@given(st.text())
def test_printable_never_leaves_a_control_character(text: str) -> None:
    shown = fmt.printable(text)
    assert no_control(shown, allowed="\t\n")
    assert fmt.printable(shown) == shown
