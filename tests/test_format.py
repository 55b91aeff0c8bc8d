"""Formatting for people: control characters in an article never reach a terminal or a chat."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from qabot import format as fmt
from qabot.answer import Reply
from qabot.passage import Passage, Source
from tests.fake_telegram import parse_html

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


def reply(*results: Passage, answers: tuple[int, ...] = (0,), notice: str | None = None) -> Reply:
    """A reply to "q" asked on 9 Jan 2024, showing `results`."""
    return Reply("q", "answer" if results else "no_answer", results, answers, dt.date(2024, 1, 9),
                 notice=notice)


def no_control(text: str, allowed: str = "\n") -> bool:
    return not any((ord(c) < 0x20 and c not in allowed) or 0x7F <= ord(c) < 0xA0 for c in text)


def test_terminal_output_has_no_control_characters() -> None:
    out = fmt.to_terminal(reply(passage()), bold=("<b>", "</b>"))
    assert no_control(out), repr(out)
    assert "pwned" not in out and "http://x" not in out  # the payload of OSC strings goes too
    assert out.startswith("Answer: <b>The answer is here.</b> [1]\n")
    assert "<b>The answer is here.</b>" in out.split("Passages:")[1]
    assert "Calm start." in out and "Bell del c1 osc8 link end page." in out
    assert "Title here" in out and "/s/a.txt" in out and "/s/b.txt" in out


def test_telegram_output_has_no_control_characters() -> None:
    out = fmt.telegram_reply(reply(passage()))
    assert all(no_control(m) for m in out), out
    assert "<b>The answer is here.</b>" in out[0]
    assert no_control(fmt.citation(passage()), allowed="")


def test_json_keeps_the_exact_text_and_escapes_every_control_character() -> None:
    out = fmt.to_json(reply(passage()))
    assert no_control(out), repr(out)
    assert "\\u009b" in out and "\\u007f" in out and "\\u001b" in out
    p = json.loads(out)["passages"][0]
    assert p["text"] == HOSTILE and p["end"] - p["start"] == len(HOSTILE)


@given(st.text())
def test_printable_never_leaves_a_control_character(text: str) -> None:
    shown = fmt.printable(text)
    assert no_control(shown, allowed="\t\n")
    assert fmt.printable(shown) == shown


# ---------------------------------------------------------------- the answer-first layout


def story(rank: int, text: str, answer: str, date: dt.date | None = dt.date(2023, 12, 1),
          title: str = "Harbour & ferry news") -> Passage:
    """A passage of made-up text whose answering sentence is `answer` ("" for none)."""
    a = text.index(answer) if answer else 0
    return Passage(rank=rank, score=0.5, text=text, doc_id=f"news/{rank}.txt", path=f"/s/news/{rank}.txt",
                   date=date, title=title, start=40, end=40 + len(text), answer_start=40 + a,
                   answer_end=40 + a + len(answer))


FERRY = story(1, "Boats will run more often. The ferry will run every 20 minutes from April. Fares stay.",
              "The ferry will run every 20 minutes from April.")
TICKET = story(2, "An adult ticket will still cost 3 pounds <for now>.", "", dt.date(2024, 1, 8), "Tickets")
CALM = "Crossings take ten minutes in calm weather."
UNDATED = story(3, CALM, CALM, None, "")


def test_source_line_has_headline_display_date_and_age() -> None:
    r = reply(FERRY, TICKET, UNDATED)
    assert fmt.source_line(FERRY, r) == "Harbour & ferry news · 1 Dec 2023 · 1 month ago"
    assert fmt.source_line(TICKET, r) == "Tickets · 8 Jan 2024 · yesterday"
    assert fmt.source_line(UNDATED, r) == "news/3.txt · date unknown"  # no title: the file names it


def test_telegram_reply_leads_with_the_answer_then_sources_then_expandable_quotes() -> None:
    [message] = fmt.telegram_reply(reply(FERRY, TICKET, UNDATED, answers=(0, 2)))
    head, quotes = message.split("\n<blockquote expandable>", 1)
    assert head == (
        "<b>The ferry will run every 20 minutes from April.</b> [1]\n"
        "<b>Crossings take ten minutes in calm weather.</b> [3]\n\n"
        "[1] Harbour &amp; ferry news · 1 Dec 2023 · 1 month ago\n"
        "[3] news/3.txt · date unknown")  # [2] answers nothing: its source is in its quote only
    visible, entities = parse_html(message)  # Telegram's rules: valid
    assert [e["type"] for e in entities].count("expandable_blockquote") == 3
    assert message.count("<blockquote expandable>") == 3 and message.endswith("</blockquote>")
    assert "<blockquote expandable>[2] An adult ticket will still cost 3 pounds &lt;for now&gt;." in message
    assert ("[1] Boats will run more often. <b>The ferry will run every 20 minutes from April.</b> Fares"
            in message)
    assert fmt.telegram_collapsed(message) == fmt.telegram_visible(head)
    assert "Fares stay." in visible and "Fares stay." not in fmt.telegram_collapsed(message)


def test_no_sentence_notice_no_answer_and_small_talk() -> None:
    [closest] = fmt.telegram_reply(reply(TICKET, answers=(), notice="My newest article is from 8 Jan 2024."))
    assert fmt.telegram_collapsed(closest) == (
        f"My newest article is from 8 Jan 2024.\n\n{fmt.NO_SENTENCE}\n\n[2] Tickets · 8 Jan 2024 · yesterday")
    assert "<b>" not in closest
    assert fmt.telegram_reply(reply()) == [fmt.NO_ANSWER.replace("'", "&#x27;")]
    hi = Reply("hi", "small_talk", as_of=dt.date(2024, 1, 9), message="Hello! Ask <me>.")
    assert fmt.telegram_reply(hi) == ["Hello! Ask &lt;me&gt;."]
    assert fmt.to_terminal(hi) == "Hello! Ask <me>."
    assert fmt.to_terminal(reply()) == fmt.NO_ANSWER


def test_terminal_reply_answers_first() -> None:
    out = fmt.to_terminal(reply(FERRY, TICKET, answers=(0,)), width=100)
    head, sources, label, passages = out.split("\n\n", 3)
    assert head == "Answer: The ferry will run every 20 minutes from April. [1]"
    assert sources == ("[1] Harbour & ferry news · 1 Dec 2023 · 1 month ago\n"
                       "[2] Tickets · 8 Jan 2024 · yesterday")
    assert label == "Passages:"
    assert passages.startswith("[1] Harbour & ferry news\n   2023-12-01 · /s/news/1.txt")
    assert "[2] Tickets" in passages and "<for now>" in passages
    wrapped = fmt.to_terminal(reply(FERRY), width=30).split("\n")
    assert wrapped[:2] == ["Answer: The ferry will run", "        every 20 minutes from"]


def test_reply_dict_names_the_answer_by_rank_and_offsets() -> None:
    d = json.loads(fmt.to_json(reply(FERRY, TICKET, UNDATED, answers=(2, 0))))
    assert d["kind"] == "answer" and d["as_of"] == "2024-01-09" and d["message"] is None
    assert d["answer"] == {"text": "Crossings take ten minutes in calm weather.", "rank": 3,
                           "doc_id": "news/3.txt", "start": 40, "end": 83, "phrase": None}
    assert d["answers"] == [3, 1] and d["shown"] == [1, 2, 3]
    assert [p["age"] for p in d["passages"]] == ["1 month ago", "yesterday", None]
    p = d["passages"][0]
    assert p["text"][p["answer_start"] - p["start"] : p["answer_end"] - p["start"]] == FERRY.answer
    none = fmt.reply_dict(reply(TICKET, answers=()))
    assert none["answer"] is None and none["answers"] == [] and none["shown"] == [2]


def with_phrase(p: Passage, words: str) -> Passage:
    at = p.text.index(words) + p.start
    return dataclasses.replace(p, phrase_start=at, phrase_end=at + len(words))


def test_the_answering_phrase_is_underlined_in_telegram_and_on_a_terminal_and_plain_when_piped() -> None:
    ferry = with_phrase(FERRY, "every 20 minutes")
    d = fmt.reply_dict(reply(ferry))
    assert d["answer"]["phrase"] == {"text": "every 20 minutes", "start": ferry.phrase_start,
                                     "end": ferry.phrase_end}
    assert ferry.text[ferry.phrase_start - ferry.start : ferry.phrase_end - ferry.start] == "every 20 minutes"
    first = fmt.telegram_reply(reply(ferry))[0]
    assert first.startswith("<b>The ferry will run <u>every 20 minutes</u> from April.</b> [1]")
    tty = fmt.to_terminal(reply(ferry), bold=("\x1b[1m", "\x1b[0m")).split("\n")[0]
    assert tty == "Answer: \x1b[1mThe ferry will run \x1b[4mevery 20 minutes\x1b[24m from April.\x1b[0m [1]"
    piped = fmt.to_terminal(reply(ferry)).split("\n")[0]
    assert piped == "Answer: The ferry will run every 20 minutes from April. [1]"
    # An article's own private-use characters are not taken for the marks.
    odd = with_phrase(story(1, "Boats run \ue000 every 20 minutes \ue001 now.", "Boats run \ue000 every 20 "
                                                                                 "minutes \ue001 now."),
                      "every 20 minutes")
    assert fmt.telegram_reply(reply(odd))[0].startswith("<b>Boats run <u>every 20 minutes</u> now.</b>")


def test_the_formatters_load_without_the_query_stack() -> None:
    # A front end formats results without loading FAISS, the store or the search code.
    code = ("import sys, qabot.format; "
            "print(sorted(m for m in ('faiss', 'qabot.retrieve', 'qabot.store', 'qabot.embed') "
            "if m in sys.modules))")
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ["PYTHONPATH"]])}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root,
                          env=env, timeout=60, check=True)
    assert done.stdout.strip() == "[]"
