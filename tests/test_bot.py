"""The Telegram bot end to end: the real PTB Application polling FakeTelegram on 127.0.0.1, with
the real model and a real index; the real CLI in a subprocess for start-up and shutdown; and
the pure splitting and formatting functions, property-tested."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import functools
import html
import itertools
import logging
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest.mock import ANY

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from telegram.ext import AIORateLimiter, Application

from qabot import answer, bot, sentences, store, transport
from qabot import format as fmt
from qabot.answer import Reply
from qabot.config import BotSettings, ModelSettings, PathSettings, SearchOptions, Settings
from qabot.dates import age, display_date
from qabot.indexer import run_index
from qabot.passage import Passage
from qabot.reader import Retriever
from qabot.retrieve import search
from qabot.smalltalk import small_talk
from tests.conftest import QABOT, QUESTION, indexed, link_encoder, make_seeds
from tests.fake_telegram import (
    BOT_USERNAME,
    DEFAULT_GROUP_ID,
    DEFAULT_USER_ID,
    FakeTelegram,
    detect_entities,
    parse_html,
    utf16_len,
)

TOKEN = "123456:TEST-secret-token"
OFF_TOPIC = "How do I bake sourdough bread?"  # no answer: what NO_ANSWER looks like (floor tests below)
# An article whose text needs escaping in HTML: it must arrive exactly as written.
TRICKY = (" date 2024-04-02 Shares of AT&T <Telecom> rose 5% after the \"Q1 <b>beat</b>\" report. "
          "Analysts said AT&T's wireless unit added 349,000 subscribers & cut costs.")
_ids = itertools.count(900_000)
CONVERSATION = Path(__file__).parent / "fixtures" / "conversation"
ANSWER = Path(__file__).parent / "fixtures" / "answer"


def quiet(msg: str) -> None:
    pass


# ---------------------------------------------------------------- fixtures and harness


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory, encoder_cache: Path) -> Settings:
    """The shipped seed, the fixtures and one article full of HTML specials, indexed once."""
    root = tmp_path_factory.mktemp("bot")
    seeds = make_seeds(root / "seeds")
    (seeds / "tricky.txt").write_text(TRICKY, encoding="utf-8")
    return indexed(seeds, encoder_cache)


@pytest.fixture(scope="module")
def retriever(corpus: Settings) -> Retriever:
    """One Retriever for the module's bots, so each start-up's prewarm is instant after the first."""
    return Retriever(corpus.index)


@pytest.fixture
def tg() -> Iterator[FakeTelegram]:
    """A running fake Bot API server."""
    with FakeTelegram(token=TOKEN) as fake:
        yield fake
        assert fake.server_errors == []


class RunningBot:
    """`bot.serve()` (the CLI's own polling call) on a thread with its own event loop."""

    def __init__(self, app: Application) -> None:
        self.app = app
        self.loop: asyncio.AbstractEventLoop | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        try:
            bot.serve(self.app, stop_signals=None)
        except BaseException as exc:  # surfaced in the test thread
            self.error = exc

    def stop(self) -> None:
        """Stop polling the way a signal does, and wait for the clean shutdown."""
        if self.loop is not None and not self.loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                self.loop.call_soon_threadsafe(self.app.stop_running)
        self.thread.join(20)
        assert not self.thread.is_alive(), "the bot did not stop"
        if self.error is not None:
            raise self.error


def with_bot(settings: Settings, **changes: Any) -> Settings:
    """The settings with these [bot] keys changed."""
    return dataclasses.replace(settings, bot=dataclasses.replace(settings.bot, **changes))


@contextlib.contextmanager
def running(
    tg: FakeTelegram, settings: Settings, retriever: Retriever, **bot_changes: Any
) -> Iterator[Application]:
    """The real Application, built by bot.build_application, polling `tg` until the block ends;
    `bot_changes` change [bot] settings."""
    app = bot.build_application(with_bot(settings, **bot_changes), TOKEN, tg.base_url, retriever)
    runner = RunningBot(app)
    runner.thread.start()
    try:
        tg.wait_for_call("getUpdates", timeout=30)
        assert runner.loop is not None
        _RUNNING[:] = [(app, runner.loop)]
        yield app
    finally:
        _RUNNING.clear()
        runner.stop()


_RUNNING: list[tuple[Application, asyncio.AbstractEventLoop]] = []  # the bot `running` runs


def settled(tg: FakeTelegram, timeout: float = 15) -> None:
    """Block until the running bot has fetched every update sent so far and finished handling
    each: Telegram forgets an update once a later getUpdates confirms it, which PTB sends only
    after queueing the batch before; PTB marks a queued update done once its handler returned."""
    [(app, loop)] = _RUNNING
    wait_until(lambda: tg.pending_updates == 0, timeout)
    asyncio.run_coroutine_threadsafe(app.update_queue.join(), loop).result(timeout)


def expected(settings: Settings, retriever: Retriever, question: str,
             options: answer.AnswerOptions | None = None, **changes: Any) -> list[str]:
    """What the bot must send for a question: the formatter's reply to respond()'s Reply. The core
    and the formatter's own output, so it checks that the bot sends what they make, never what
    that is: pair it with a check of the content (answers_question)."""
    s = with_bot(settings, **changes)
    reply = answer.respond(retriever, question, s.bot_search, answering=options)
    return fmt.telegram_reply(reply)


# What the reply to QUESTION says, written out: the answering sentence first, the citation last.
ANSWER_LEAD = ("He also reiterated the validity of Azerbaijan's proposal to use the Aghdam-Khankendi road "
               "to help Armenian residents in Karabakh")
CITATION = ("Azerbaijan informed the visiting chief advisor of the US State Department on Caucasus… "
            "— 2023-08-03 — 000_510ad1cb4fc50a43.txt")


def answers_question(html_text: str) -> bool:
    """Whether a message (Telegram HTML) is the reply to QUESTION, by its content."""
    visible, _ = parse_html(html_text)  # as Telegram shows it (FakeTelegram's parser, not ours)
    return visible.startswith(ANSWER_LEAD) and visible.endswith(CITATION)


def texts(sent: list[dict[str, Any]]) -> list[str]:
    return [m["text"] for m in sent]


def raw_message(chat_type: str = "private", user_id: int = DEFAULT_USER_ID, **content: Any) -> dict[str, Any]:
    """A message update body Telegram would send, with any content (sticker, photo, voice…)."""
    chat: dict[str, Any] = ({"id": user_id, "type": "private", "first_name": "Alice"}
                            if chat_type == "private" else
                            {"id": DEFAULT_GROUP_ID, "type": chat_type, "title": "QA test group"})
    return {"message_id": next(_ids), "date": int(time.time()), "chat": chat,
            "from": {"id": user_id, "is_bot": False, "first_name": "Alice"}, **content}


STICKER: dict[str, Any] = {"sticker": {"file_id": "s1", "file_unique_id": "u1", "type": "regular",
                                       "width": 512, "height": 512, "is_animated": False,
                                       "is_video": False}}
PHOTO: dict[str, Any] = {"photo": [{"file_id": "p1", "file_unique_id": "u2", "width": 90, "height": 90}]}
VOICE: dict[str, Any] = {"voice": {"file_id": "v1", "file_unique_id": "u3", "duration": 3}}


def exactly(tg: FakeTelegram, n: int) -> list[dict[str, Any]]:
    """Wait for n sent messages, then until the bot has handled every update sent: anything it
    sent that it shouldn't have (chatter, a second reply) is then an (n+1)th message."""
    tg.wait_for_messages(n, timeout=15)
    settled(tg)
    sent = tg.sent
    assert len(sent) == n, [m["visible_text"][:80] for m in sent]
    return sent


def no_errors_logged(caplog: pytest.LogCaptureFixture) -> None:
    bad = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not bad, [r.getMessage() for r in bad]


# ---------------------------------------------------------------- 2. answers


def test_private_question_is_answered_with_passages_and_citations(
    tg: FakeTelegram, corpus: Settings, retriever: Retriever, caplog: pytest.LogCaptureFixture
) -> None:
    """Any text in a private chat is a question: passages, answer in bold, citation, HTML."""
    want = expected(corpus, retriever, QUESTION)
    with running(tg, corpus, retriever):
        update = tg.send_text(QUESTION)
        sent = tg.wait_for_messages(len(want), timeout=15)
    assert texts(sent) == want and len(want) == 1  # one message: a short reply is never split
    assert answers_question(want[0])
    [reply] = sent
    assert reply["parse_mode"] == "HTML" and reply["reply_to_update_id"] == update
    assert reply["link_preview_options"] == {"is_disabled": True}
    assert reply["reply_parameters"]["allow_sending_without_reply"] is True  # deleted question: still
    bold = [e for e in reply["entities"] if e["type"] == "bold"]
    italic = [e for e in reply["entities"] if e["type"] == "italic"]
    visible = reply["visible_text"]
    assert "Aghdam-Khankendi road" in visible[bold[0]["offset"]:][: bold[0]["length"]]
    citation = visible[italic[-1]["offset"]:]
    assert citation.endswith(" — 2023-08-03 — 000_510ad1cb4fc50a43.txt")
    assert citation.startswith("Azerbaijan informed the visiting chief advisor")
    # "typing" went out while searching, before the answer
    calls = tg.calls
    action = next(i for i, c in enumerate(calls) if c["method"] == "sendChatAction")
    answer = next(i for i, c in enumerate(calls) if c["method"] == "sendMessage")
    assert calls[action]["params"]["action"] == "typing" and action < answer
    assert tg.commands == [{"command": c.command, "description": c.description} for c in bot.COMMANDS]
    no_errors_logged(caplog)


def test_article_and_user_text_is_escaped(tg: FakeTelegram, corpus: Settings, retriever: Retriever) -> None:
    """<, > and & from an article arrive as text, never as markup (FakeTelegram parses the HTML
    as Telegram does and would refuse broken markup)."""
    with running(tg, corpus, retriever, min_score=0.0):
        tg.send_text("How many subscribers did AT&T's <wireless> unit add?")
        [reply] = tg.wait_for_messages(1, timeout=15)
    assert "Shares of AT&T <Telecom> rose 5% after the \"Q1 <b>beat</b>\" report." in reply["visible_text"]
    assert "&lt;Telecom&gt;" in reply["text"] and "<Telecom>" not in reply["text"]
    assert "[1] " in reply["visible_text"] and "— tricky.txt" in reply["visible_text"]
    assert "[1] Shares of AT&T <Telecom> rose 5%" in fmt.telegram_collapsed(reply["text"])  # the source line


def entity_texts(message: dict[str, Any], kind: str) -> list[str]:
    """The visible text under each entity of `kind` (offsets count UTF-16 units, as Telegram's do)."""
    units = message["visible_text"].encode("utf-16-le", "surrogatepass")
    return [units[2 * e["offset"] : 2 * (e["offset"] + e["length"])].decode("utf-16-le", "surrogatepass")
            for e in message["entities"] if e["type"] == kind]


def test_the_reply_leads_with_the_answer_then_sources_then_collapsed_passages(
    tg: FakeTelegram, corpus: Settings, retriever: Retriever
) -> None:
    """Answer first: the answering sentence in bold with [1], a source line per article (headline,
    display date, age), then each passage in an expandable quote that the reader opens."""
    reply = answer.respond(retriever, QUESTION, corpus.bot_search)
    with running(tg, corpus, retriever):
        tg.send_text(QUESTION)
        [sent] = exactly(tg, 1)
    lead = reply.answer
    assert reply.kind == "answer" and lead is not None and lead.rank == 1
    assert lead.doc_id == "000_510ad1cb4fc50a43.txt" and "Aghdam-Khankendi road" in lead.answer
    lines = sent["visible_text"].split("\n")
    sentence = " ".join(lead.answer.split())
    assert lines[0] == f"{sentence} [1]" and lines[1] == ""
    assert entity_texts(sent, "bold")[0] == sentence
    assert sent["entities"][0] == {"type": "bold", "offset": 0, "length": utf16_len(sentence)}
    sources = lines[2 : 2 + len(reply.results)]
    assert [line.split(" ", 1)[0] for line in sources] == [f"[{n}]" for n in range(1, len(sources) + 1)]
    when = age(dt.date(2023, 8, 3), dt.date.today())
    assert sources[0].startswith("[1] Azerbaijan informed the visiting chief advisor")
    assert sources[0].endswith(f" · {display_date(dt.date(2023, 8, 3))} · {when}")
    assert " · 3 Aug 2023 · " in sources[0] and when.endswith("years ago")
    quotes = entity_texts(sent, "expandable_blockquote")
    assert len(quotes) == len(reply.results) and quotes[0].startswith("[1] ")
    assert sentence in quotes[0] and quotes[0].endswith("— 2023-08-03 — 000_510ad1cb4fc50a43.txt")
    assert [q.split(" ", 1)[0] for q in quotes] == [f"[{n}]" for n in range(1, len(quotes) + 1)]
    # Before expanding, a reader sees the answer and the sources, not the passages.
    collapsed = fmt.telegram_collapsed(sent["text"])
    assert collapsed == "\n".join(lines[: 2 + len(reply.results)]).strip()
    assert "000_510ad1cb4fc50a43.txt" not in collapsed


@pytest.fixture(scope="module")
def big_corpus(tmp_path_factory: pytest.TempPathFactory, encoder_cache: Path) -> Settings:
    """Every made-up article of the fixtures and the shipped seed (12 articles): enough passages
    that a reply showing them all is longer than one Telegram message."""
    root = tmp_path_factory.mktemp("big")
    seeds = make_seeds(root / "seeds")
    for folder in (ANSWER, CONVERSATION):
        shutil.copytree(folder, seeds / folder.name)
    return indexed(seeds, encoder_cache)


def test_long_reply_is_split_between_passages(
    tg: FakeTelegram, big_corpus: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every article of the index in one reply is over 4,096 characters: several messages, each
    within the limit and accepted by Telegram's HTML parser, the answer and sources first, the
    quoted passages after in rank order, the first message quoting the question."""
    retriever = Retriever(big_corpus.index)
    wide = {"answers": 30, "min_score": 0.0}
    every = answer.AnswerOptions(keep_share=0.0)  # no relative cut: every article is shown
    monkeypatch.setattr(bot, "respond", functools.partial(answer.respond, answering=every))
    question = "Azerbaijan Armenia talks"
    want = expected(big_corpus, retriever, question, every, **wide)
    assert len(want) >= 2
    with running(tg, big_corpus, retriever, **wide):
        update = tg.send_text(question)
        sent = exactly(tg, len(want))
    assert texts(sent) == want  # every part was accepted (FakeTelegram refuses broken HTML)
    assert all(utf16_len(m["visible_text"]) <= 4096 and parse_html(m["text"]) for m in sent)
    assert sent[0]["reply_to_update_id"] == update and sent[1]["reply_to_message_id"] is None
    assert sent[0]["entities"][0]["type"] == "bold"
    assert sent[0]["visible_text"].split("\n")[0].endswith(" [1]")
    quotes = [q for m in sent for q in entity_texts(m, "expandable_blockquote")]
    ranks = [int(q.split("]")[0].lstrip("[")) for q in quotes]
    shown = answer.respond(retriever, question, SearchOptions(k=30, min_score=0.0), answering=every).results
    assert ranks == list(range(1, len(shown) + 1)) and len(shown) >= 6  # every article shown, in order
    sources = [line for line in fmt.telegram_collapsed(sent[0]["text"]).split("\n") if line.startswith("[")]
    cited = [line.rsplit("[", 1)[1].rstrip("]") for line in sent[0]["visible_text"].split("\n")[:3]
             if line.endswith("]")]
    assert [line.split(" ", 1)[0] for line in sources] == [f"[{n}]" for n in cited]  # all in the first part


def test_search_never_blocks_the_event_loop(
    tg: FakeTelegram, corpus: Settings, retriever: Retriever, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While one question's search is held, another user's command is answered: the search
    finishes only once that answer has arrived, so a blocked event loop times out here."""
    real_respond = bot.respond
    searching, release = threading.Event(), threading.Event()

    def slow(*args: Any, **kwargs: Any) -> Reply:
        if args[1] == "slow question":
            searching.set()
            assert release.wait(20), "never released"
        return real_respond(*args, **kwargs)

    monkeypatch.setattr(bot, "respond", slow)
    with running(tg, corpus, retriever):
        tg.send_text("slow question", user_id=1)
        assert searching.wait(15)
        tg.send_text("/help", user_id=2)
        try:
            [help_reply] = tg.wait_for_messages(1, chat_id=2, timeout=15)
        finally:
            release.set()
        [slow_reply] = tg.wait_for_messages(1, chat_id=1, timeout=15)
    assert help_reply["time"] < slow_reply["time"]


# ---------------------------------------------------------------- 3. nothing relevant


# Questions the bot's floor ([bot] min_score 0.22) was NOT chosen on: benchmarks/bot.py --calibrate
# set it on its ON_TOPIC and OFF_TOPIC lists (this corpus) and tests/fixtures/retrieval/queries.jsonl,
# and benchmarks/answers.py --calibrate kept it on benchmarks/unanswerable.jsonl; a test re-checking
# those would only restate the choice. Written for this test before their scores were looked at,
# long and precise or short chat-style.
HELD_OUT = {
    "what did azerbaijan accuse armenia of": "000_510ad1cb4fc50a43.txt",
    "When did the Armenian military occupy Nagorno-Karabakh?": "000_510ad1cb4fc50a43.txt",
    "How many days did the 2020 clashes last?": "000_510ad1cb4fc50a43.txt",
    "Who brokered the peace agreement that ended the 2020 war?": "000_510ad1cb4fc50a43.txt",
    "how high was inflation at its peak in 2022": "003_markets.txt",
    "is the odysseus lander still sending data": "004_space.txt",
    "Who doubled Manchester United's lead before half-time?": "world/002_football.txt",
    "what caused the first goal in the cup final": "world/002_football.txt",
    "Which spa shut because of the eruption?": "world/001_volcano.txt",
    "how much did at&t shares rise after the q1 report": "tricky.txt",
}
HELD_OUT_OFF_TOPIC = ["Who directed the film Jaws?", "how many legs does a spider have",
                      "What's a good recipe for banana bread?", "How do I renew my passport?",
                      "what time does the sun set in winter", "Which instrument did Jimi Hendrix play?"]


def test_the_bots_floor_answers_what_the_articles_cover_and_not_the_rest(
    tg: FakeTelegram, corpus: Settings, retriever: Retriever
) -> None:
    """On questions it was not chosen on, the bot's floor lets every answerable one through (its
    article cited first) and answers every off-topic one with NO_ANSWER, though search found
    something for each (the floor took it away)."""
    questions = [*HELD_OUT, *HELD_OUT_OFF_TOPIC]
    with running(tg, corpus, retriever):
        asked = {tg.send_text(q, user_id=500 + n): q for n, q in enumerate(questions)}  # one each
        sent = exactly(tg, len(questions))
    replies = {asked[m["reply_to_update_id"]]: m for m in sent}
    relevance = {q: search(retriever, q, SearchOptions(k=1), floor=False, answers=False)[0].relevance
                 for q in questions}
    floor = corpus.bot_search.floor
    for q, doc in HELD_OUT.items():
        assert replies[q]["visible_text"] != fmt.NO_ANSWER and cites(replies[q]) == doc, (q, relevance[q])
    for q in HELD_OUT_OFF_TOPIC:
        assert replies[q]["visible_text"] == fmt.NO_ANSWER, (q, relevance[q])
        assert relevance[q] < floor


def test_floor_is_the_bot_setting_in_hybrid_mode_else_the_modes_own(corpus: Settings) -> None:
    assert dataclasses.replace(corpus, bot=BotSettings(min_score=0.3)).bot_search.floor == 0.3
    dense = dataclasses.replace(corpus, search=SearchOptions(mode="dense"))
    assert dense.bot_search.floor == dense.search.min_score_dense


# ---------------------------------------------------------------- 4. commands


HELP = (  # /help, written out (the bot's own formatter would only say the bot agrees with itself)
    "How to ask\n"
    "• In a private chat: just write your question.\n"
    "• Follow-ups such as “and when?”, or a reply to my answer, are read with your previous question.\n"
    "• In a group: /ask followed by the question, mention me in your message, or reply to one of my "
    "messages.\n\n"
    "Commands\n"
    "/ask <question> — ask a question\n"
    "/sources — the articles I know (/sources 2 for page 2)\n"
    "/new — start afresh: forget the previous question\n"
    "/help — this message"
)


def test_start_help_ask_and_sources(tg: FakeTelegram, corpus: Settings, retriever: Retriever) -> None:
    """/start describes the index, /help how to ask, /ask answers, /sources pages with buttons."""
    with running(tg, corpus, retriever, sources_page_size=2):
        tg.send_text("/start")
        [start] = tg.wait_for_messages(1, timeout=15)
        tg.send_text("/help")
        [help_] = tg.wait_for_messages(2, timeout=15)[1:]
        tg.send_text(f"/ask {QUESTION}")
        [answer] = tg.wait_for_messages(3, timeout=15)[2:]
        tg.send_text("/sources")
        [page1] = tg.wait_for_messages(4, timeout=15)[3:]
        tg.send_callback_query("sources:2")  # the "Older ▶" button under page 1
        tg.wait_for_call("editMessageText", timeout=15)
        tg.send_text("/sources 3")
        [page3] = tg.wait_for_messages(5, timeout=15)[4:]
    assert start["visible_text"] == (
        "Hello! I answer questions about a collection of news articles. I know 6 news articles, from "
        "2023-08-03 to 2024-05-25.\n\nSend me a question in plain words. I reply with the sentence that "
        "answers it, in bold, and its source (headline, date, age); the passages behind it, from up "
        "to 3 articles, open with a tap.\n\n" + HELP)
    assert entity_texts(start, "bold") == ["6 news articles", "bold", "How to ask", "Commands"]
    assert help_["visible_text"] == HELP and entity_texts(help_, "bold") == ["How to ask", "Commands"]
    assert answers_question(answer["text"]) and answer["text"] == expected(corpus, retriever, QUESTION)[0]
    assert page1["visible_text"].startswith("6 indexed articles, newest first (page 1 of 3):\n1. Manchester")
    assert [b["callback_data"] for b in page1["reply_markup"]["inline_keyboard"][0]] == ["sources:2"]
    [edit] = tg.edits
    assert edit["message_id"] == page1["message_id"] and "(page 2 of 3)" in edit["visible_text"]
    assert "\n3. Iceland" in edit["visible_text"] and "004_space.txt" in edit["visible_text"]
    assert [b["callback_data"] for b in edit["params"]["reply_markup"]["inline_keyboard"][0]] == [
        "sources:1", "sources:3"]
    assert tg.callback_answers[0]["callback_query_id"]
    assert "(page 3 of 3)" in page3["visible_text"] and "000_510ad1cb4fc50a43.txt" in page3["visible_text"]


# ---------------------------------------------------------------- 5. groups


def test_groups_answer_only_what_is_meant_for_the_bot(
    tg: FakeTelegram, corpus: Settings, retriever: Retriever, caplog: pytest.LogCaptureFixture
) -> None:
    want = expected(corpus, retriever, QUESTION)
    with running(tg, corpus, retriever):
        tg.send_text(QUESTION, chat_type="group")  # chatter: not for the bot
        tg.send_text(f"/ask@some_other_bot {QUESTION}", chat_type="group")
        tg.send_update({"message": raw_message("group", **STICKER)})
        tg.send_text("@someone_else what do you think?", chat_type="group")
        asked = tg.send_text(f"/ask@{BOT_USERNAME} {QUESTION}", chat_type="group")
        sent = exactly(tg, 1)
        assert [m["reply_to_update_id"] for m in sent] == [asked]
        mentioned = tg.send_text(f"@{BOT_USERNAME} {QUESTION}", chat_type="supergroup")
        tg.wait_for_messages(2, timeout=15)
        replied = tg.send_text(QUESTION, chat_type="supergroup", reply_to_bot=True)
        tg.wait_for_messages(3, timeout=15)
        only_mention = tg.send_text(f"@{BOT_USERNAME}", chat_type="group")
        sent = exactly(tg, 4)
    assert [m["reply_to_update_id"] for m in sent] == [asked, mentioned, replied, only_mention]
    assert texts(sent[:3]) == want * 3 and answers_question(want[0])
    assert sent[3]["visible_text"] == (
        f"Put your question after the mention: @{BOT_USERNAME} <your question>")
    no_errors_logged(caplog)


def captioned(caption: str, chat_type: str = "private", media: dict[str, Any] = PHOTO) -> dict[str, Any]:
    """A photo (or other media) message with a caption, its entities as Telegram detects them."""
    return {"message": raw_message(chat_type, **media, caption=caption,
                                   caption_entities=detect_entities(caption))}


def test_a_caption_is_read_as_the_question_under_the_group_rules(
    tg: FakeTelegram, corpus: Settings, retriever: Retriever, caplog: pytest.LogCaptureFixture
) -> None:
    """A photo or document with a caption is a question like a text message: anywhere in a
    private chat; in a group only with /ask or a mention. /start in a group says how to ask there."""
    want = expected(corpus, retriever, QUESTION)
    document = {"document": {"file_id": "d1", "file_unique_id": "u4", "file_name": "clip.pdf"}}
    with running(tg, corpus, retriever):
        updates = [
            tg.send_update(captioned(QUESTION)),
            tg.send_update(captioned(f"@{BOT_USERNAME} {QUESTION}", "group", document)),
            tg.send_update(captioned(f"/ask {QUESTION}", "supergroup")),
            tg.send_update(captioned(f"/ask@{BOT_USERNAME}", "group")),
            tg.send_update(captioned("/help")),
        ]
        sent = tg.wait_for_messages(len(updates), timeout=15)
        tg.send_update(captioned(QUESTION, "group"))  # group chatter with a picture: not for the bot
        tg.send_update(captioned(f"/ask@some_other_bot {QUESTION}", "group"))
        started = tg.send_text(f"/start@{BOT_USERNAME}", chat_type="group")
        sent = exactly(tg, len(updates) + 1)
    replies = {m["reply_to_update_id"]: m["text"] for m in sent}
    assert [replies[u] for u in updates] == [*[want[0]] * 3, bot.ASK_USAGE, bot.NOT_TEXT]
    assert answers_question(want[0])
    welcome = fmt.telegram_visible(replies[started])
    assert "In this group, ask with /ask followed by your question, mention me" in welcome
    assert "Send me a question in plain words" not in welcome
    no_errors_logged(caplog)


# ---------------------------------------------------------------- 6. everything else


def test_stickers_edits_empty_and_overlong_questions_get_a_short_reply(
    tg: FakeTelegram, corpus: Settings, retriever: Retriever, caplog: pytest.LogCaptureFixture
) -> None:
    with running(tg, corpus, retriever):
        updates = [
            tg.send_update({"message": raw_message(**STICKER)}),
            tg.send_update({"message": raw_message(**PHOTO)}),
            tg.send_update({"message": raw_message(**VOICE)}),
            tg.send_update({"edited_message": {**raw_message(text="What?"), "edit_date": 1}}),
            tg.send_text("/ask"),
            tg.send_text("/ask    "),
            tg.send_text("x" * 4000),
            tg.send_text("/nonsense"),
        ]
        sent = tg.wait_for_messages(len(updates), timeout=15)
        tg.send_update({"channel_post": {"message_id": 5, "date": 0, "text": QUESTION,
                                         "chat": {"id": -1001999, "type": "channel", "title": "c"}}})
        tg.send_update({"edited_message": {**raw_message("group", text=f"/ask {QUESTION}"), "edit_date": 1}})
        tg.send_text(OFF_TOPIC)
        sent = exactly(tg, len(updates) + 1)
    replies = {m["reply_to_update_id"]: m["visible_text"] for m in sent}
    assert len(sent) == len(updates) + 1  # nothing for the channel post and the group edit
    assert [replies[u] for u in updates] == [
        bot.NOT_TEXT, bot.NOT_TEXT, bot.NOT_TEXT, bot.EDITED,
        "Ask like this: /ask <your question about the news>",
        "Ask like this: /ask <your question about the news>",
        "That question is 4,000 characters long; I can take up to 2,000. Please ask something shorter.",
        bot.UNKNOWN_COMMAND,
    ]
    no_errors_logged(caplog)


# ---------------------------------------------------------------- 7. access and abuse


def test_allowlists_refuse_politely_and_search_nothing(
    tg: FakeTelegram, corpus: Settings, retriever: Retriever, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    real_respond = bot.respond

    def spy(*args: Any, **kwargs: Any) -> Reply:
        calls.append(args[1])
        return real_respond(*args, **kwargs)

    monkeypatch.setattr(bot, "respond", spy)
    with running(tg, corpus, retriever, allowed_user_ids=(42,), allowed_chat_ids=(DEFAULT_GROUP_ID,)):
        stranger = tg.send_text("stranger's question", user_id=7)
        listing = tg.send_text("/sources", user_id=7)
        friend = tg.send_text("friend's question", user_id=42)
        member = tg.send_text("/ask member's question", user_id=7, chat_type="group")
        elsewhere = tg.send_text("/ask elsewhere", user_id=7, chat_type="group", chat_id=-4000000099)
        sent = exactly(tg, 5)
    replies = {m["reply_to_update_id"]: m["visible_text"] for m in sent}
    assert replies[stranger] == replies[listing] == replies[elsewhere] == bot.REFUSED
    assert replies[friend] == fmt.NO_ANSWER and replies[member] == fmt.NO_ANSWER
    assert sorted(calls) == ["friend's question", "member's question"]
    assert len(sent) == 5


def test_rate_limit_says_slow_down_once_then_stays_quiet(
    tg: FakeTelegram, corpus: Settings, retriever: Retriever
) -> None:
    with running(tg, corpus, retriever, rate_limit_per_minute=2) as app:
        assert isinstance(app.bot.rate_limiter, AIORateLimiter)  # Telegram's own sending limits
        limiter = app.bot_data["qabot"].limiter
        verdicts: list[tuple[int, str]] = []
        check = limiter.check

        def spy(user: int) -> str:
            verdicts.append((user, check(user)))
            return verdicts[-1][1]

        limiter.check = spy  # type: ignore[method-assign]
        asked = [tg.send_text(f"{OFF_TOPIC} {i}") for i in range(4)]
        other = tg.send_text(OFF_TOPIC, user_id=2)
        sent = exactly(tg, 4)
        wait_until(lambda: len(verdicts) == 5, timeout=15)
    replies = {m["reply_to_update_id"]: m["visible_text"] for m in sent}
    assert replies[asked[0]] == replies[asked[1]] == replies[other] == fmt.NO_ANSWER
    assert replies[asked[2]].startswith("You're asking faster than I can answer (at most 2 questions")
    # The fourth question did reach the bot and was dropped, not merely lost on the way (four
    # replies to five messages would hold either way).
    assert [v for u, v in verdicts if u == DEFAULT_USER_ID] == ["ok", "ok", "warn", "drop"]


def test_small_talk_does_not_use_up_the_question_limit(
    tg: FakeTelegram, corpus: Settings, retriever: Retriever
) -> None:
    """Two questions fill a limit of two; "thanks!" is still answered, and the next question gets
    the "slow down"."""
    with running(tg, corpus, retriever, rate_limit_per_minute=2):
        asked = [tg.send_text(f"{OFF_TOPIC} {i}") for i in range(2)]
        exactly(tg, 2)
        thanks = tg.send_text("thanks!")
        reply = exactly(tg, 3)[-1]
        third = tg.send_text(f"{OFF_TOPIC} 3")
        limited = exactly(tg, 4)[-1]
    assert reply["reply_to_update_id"] == thanks and reply["visible_text"] == small_talk("thanks!")
    assert limited["reply_to_update_id"] == third
    assert limited["visible_text"].startswith("You're asking faster than I can answer")
    assert len(asked) == 2


def test_commands_count_against_the_rate_limit_too(
    tg: FakeTelegram, corpus: Settings, retriever: Retriever
) -> None:
    """/start, /help, /sources, /new and the like are replies too: a flood of them gets one
    "slow down", then silence, as questions do."""
    with running(tg, corpus, retriever, rate_limit_per_minute=2):
        first = [tg.send_text("/start"), tg.send_text("/help")]
        flood = [tg.send_text(command) for command in ["/sources", "/help", "/start", "/sources 2",
                                                       "/new", "/ask", "/nonsense", OFF_TOPIC] * 3]
        tg.send_update({"message": raw_message(**STICKER)})
        other = tg.send_text("/help", user_id=2)
        sent = exactly(tg, 4)
    replies = {m["reply_to_update_id"]: m["visible_text"] for m in sent}
    assert set(replies) == {*first, flood[0], other}
    assert replies[flood[0]].startswith("You're asking faster than I can answer (at most 2 ")
    assert replies[other] == replies[first[1]]


# ---------------------------------------------------------------- 8. staying up


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
def test_429_and_network_errors_are_waited_out_and_retried(
    tg: FakeTelegram, corpus: Settings, retriever: Retriever
) -> None:
    with running(tg, corpus, retriever):
        tg.fail_next("sendMessage", retry_after=1)
        first = tg.send_text(OFF_TOPIC)
        [reply] = tg.wait_for_messages(1, timeout=15)
        assert reply["time"] - tg.update_times[first] >= 1.0  # retry_after was honoured
        tg.fail_next("sendMessage", status=502)
        tg.fail_next("sendMessage", status=0)  # connection dropped
        tg.send_text(OFF_TOPIC)
        tg.wait_for_messages(2, timeout=15)
    failed = [c["status"] for c in tg.calls if c["method"] == "sendMessage" and c["status"] != 200]
    assert failed == [429, 502, 0]
    assert texts(tg.sent) == [html.escape(fmt.NO_ANSWER)] * 2


def test_a_failing_update_is_logged_apologised_for_and_the_bot_goes_on(
    tg: FakeTelegram, corpus: Settings, retriever: Retriever, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    real_respond = bot.respond

    def broken(*args: Any, **kwargs: Any) -> Reply:
        if args[1] == "break please":
            raise RuntimeError("boom")
        return real_respond(*args, **kwargs)

    monkeypatch.setattr(bot, "respond", broken)
    with running(tg, corpus, retriever):
        tg.send_text("break please")
        tg.wait_for_messages(1, timeout=15)
        tg.fail_next("sendMessage", status=400, description="Bad Request: chat not found")
        tg.send_text(OFF_TOPIC)
        tg.wait_for_messages(2, timeout=15)
        tg.send_text(QUESTION)
        sent = tg.wait_for_messages(3, timeout=15)
    assert texts(sent) == [bot.SORRY, bot.SORRY, expected(corpus, retriever, QUESTION)[0]]
    assert answers_question(sent[2]["text"])
    errors = [r for r in caplog.records if r.name == "qabot.bot" and r.levelno == logging.ERROR]
    assert len(errors) == 2 and all(r.exc_info for r in errors)
    assert "RuntimeError: boom" in caplog.text and "Chat not found" in caplog.text


def test_stopping_finishes_the_answers_in_progress(
    tg: FakeTelegram, corpus: Settings, retriever: Retriever, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stopping (what SIGTERM does) while a question is being searched: it is still answered."""
    real_respond = bot.respond
    searching = threading.Event()

    def slow(*args: Any, **kwargs: Any) -> Reply:
        if args[1] == "slow question":
            searching.set()
            time.sleep(1.0)
        return real_respond(*args, **kwargs)

    monkeypatch.setattr(bot, "respond", slow)
    with running(tg, corpus, retriever):
        update = tg.send_text("slow question")
        assert searching.wait(15)  # the bot has it and is searching: stop now
        assert tg.sent == []
    assert [m["reply_to_update_id"] for m in tg.sent] == [update]
    assert tg.pending_updates == 0  # confirmed to Telegram: not asked again at the next start


def test_a_commit_landing_while_a_snapshot_loads_is_noticed_at_the_next_question(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bot's Retriever reads the manifest, then the files it names: a commit landing in
    between must not leave it on the old generation until some later commit."""
    from tests.fakes import FakeEmbedder

    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "a.txt").write_text(" date 2024-01-01 Alpacas graze in the high Andes all year.")
    settings = Settings(paths=PathSettings(seeds=seeds, index=tmp_path / "idx"),
                        model=ModelSettings(name="fake-embedder"))
    fake = FakeEmbedder()
    manifest = settings.index / "manifest.json"
    run_index(settings, log=quiet, embedder=fake)  # type: ignore[arg-type]
    first = manifest.read_bytes()
    (seeds / "b.txt").write_text(" date 2024-01-02 Beavers build dams across slow rivers.")
    run_index(settings, log=quiet, embedder=fake)  # type: ignore[arg-type]
    second = manifest.read_bytes()

    def put(content: bytes) -> None:  # a commit, as the store's writer makes it: rename over
        (settings.index / "manifest.tmp").write_bytes(content)
        os.replace(settings.index / "manifest.tmp", manifest)

    put(first)  # generation 1 is current again (generation 2's files stay on disk)
    real_load = store.load_manifest
    landed: list[bool] = []

    def commit_meanwhile(index_dir: Path) -> Any:
        read = real_load(index_dir)
        if not landed:  # generation 2 is committed just after the reader read generation 1
            put(second)
            landed.append(True)
        return read

    monkeypatch.setattr(store, "load_manifest", commit_meanwhile)
    r = Retriever(settings.index, embedder=fake)  # type: ignore[arg-type]
    assert r.snapshot().manifest.generation == 1 and landed
    assert r.snapshot().manifest.generation == 2
    assert search(r, "Which animals build dams?", SearchOptions(k=1), floor=False)[0].doc_id == "b.txt"


def test_new_index_is_served_without_restart_and_no_question_fails(
    tg: FakeTelegram, real_settings: Settings
) -> None:
    """`qabot index` commits a new generation while questions keep coming: every one is answered
    from a whole generation, and the new article is found afterwards."""
    run_index(real_settings, log=quiet)
    retriever = Retriever(real_settings.index)
    penguins = "How do emperor penguins survive the Antarctic winter?"
    with running(tg, real_settings, retriever):
        tg.send_text(penguins, user_id=1)
        [before] = tg.wait_for_messages(1, chat_id=1, timeout=15)
        (real_settings.seeds / "penguins.txt").write_text(
            " date 2024-06-01 Emperor penguins in Antarctica huddle together to survive winter "
            "storms. Colonies of up to 5,000 birds were counted by satellite."
        )
        indexer = threading.Thread(target=run_index, args=(real_settings,), kwargs={"log": quiet})
        indexer.start()
        asked: list[int] = []
        while indexer.is_alive() or len(asked) < 5:
            asked.append(tg.send_text(QUESTION if len(asked) % 2 else OFF_TOPIC, user_id=100 + len(asked)))
            time.sleep(0.05)
        indexer.join()
        sent = tg.wait_for_messages(1 + len(asked), timeout=30)
        tg.send_text(penguins, user_id=2)
        [after] = tg.wait_for_messages(1, chat_id=2, timeout=15)
    answers = {m["reply_to_update_id"]: m["visible_text"] for m in sent[1:]}
    assert sorted(answers) == asked  # every question answered exactly once
    assert all(
        ("Aghdam-Khankendi" in answers[u]) if i % 2 else answers[u] == fmt.NO_ANSWER
        for i, u in enumerate(asked)
    )
    assert "penguins.txt" not in before["visible_text"]
    assert "huddle together" in after["visible_text"] and "— penguins.txt" in after["visible_text"]


# ---------------------------------------------------------------- 9. follow-ups (issue 11 §6)

RECORD = "Who broke the Herons' home run record?"
MERGER = "Which airline agreed to buy Coastal Airways?"
HOW_MANY = "How many did he hit?"  # alone: nothing over the floor (the storm also "hit" towns)
HOW_MUCH = "How much will it pay?"  # alone: the stadium the city "will pay" for comes first


@pytest.fixture(scope="module")
def chat_corpus(tmp_path_factory: pytest.TempPathFactory, encoder_cache: Path) -> Settings:
    """Six made-up articles: an airline merger, a home run record, a storm, a stadium, and a
    rocket launch scrubbed, then given a new date."""
    root = tmp_path_factory.mktemp("conversation")
    seeds = root / "seeds"
    shutil.copytree(CONVERSATION, seeds)
    return indexed(seeds, encoder_cache)


@pytest.fixture(scope="module")
def chat_retriever(chat_corpus: Settings) -> Retriever:
    return Retriever(chat_corpus.index)


class Clock:
    """The bot's follow-up clock, moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclasses.dataclass
class Chat:
    """A conversation with the running bot: its clock, the queries respond() was given."""

    tg: FakeTelegram
    state: bot.BotState
    clock: Clock
    queries: list[str]

    def ask(self, text: str, chat_id: int = DEFAULT_USER_ID, **kw: Any) -> dict[str, Any]:
        """Send a question and wait for its answer and for the bot to remember the turn (it does
        so just after sending, so a test's next message could otherwise overtake it)."""
        before = len(self.tg.sent)
        self.tg.send_text(text, chat_type="private" if chat_id == DEFAULT_USER_ID else "group", **kw)
        answer = self.tg.wait_for_messages(before + 1, timeout=15)[before]
        question = text.split(maxsplit=1)[1] if text.startswith("/ask") else text
        wait_until(
            lambda: (turn := self.state.memory.last(chat_id)) is not None and turn.question == question
        )
        return answer


@contextlib.contextmanager
def chatting(
    tg: FakeTelegram, settings: Settings, retriever: Retriever, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Chat]:
    """The bot running with a hand-moved clock and a spy on respond() (what it asks for)."""
    queries: list[str] = []
    real_respond = bot.respond

    def spy(*args: Any, **kwargs: Any) -> Reply:
        queries.append(args[1])
        return real_respond(*args, **kwargs)

    monkeypatch.setattr(bot, "respond", spy)
    with running(tg, settings, retriever) as app:
        state = app.bot_data["qabot"]
        state.clock = Clock()
        yield Chat(tg, state, state.clock, queries)


def cites(message: dict[str, Any]) -> str:
    """The file the first passage of an answer cites (the last words of its quote)."""
    return entity_texts(message, "expandable_blockquote")[0].rsplit(" — ", 1)[-1]


def test_the_ambiguous_follow_ups_alone(chat_corpus: Settings, chat_retriever: Retriever) -> None:
    """What the tests below rely on: alone, the follow-ups find nothing or the wrong article."""
    alone = expected(chat_corpus, chat_retriever, HOW_MANY)
    assert [fmt.telegram_visible(t) for t in alone] == [fmt.NO_ANSWER]
    assert search(chat_retriever, HOW_MUCH, SearchOptions(k=1), floor=False)[0].doc_id == "stadium.txt"


def test_a_follow_up_within_ten_minutes_is_searched_with_the_question_before(
    tg: FakeTelegram,
    chat_corpus: Settings,
    chat_retriever: Retriever,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    with chatting(tg, chat_corpus, chat_retriever, monkeypatch) as chat:
        first = chat.ask(RECORD)
        chat.clock.now += 9 * 60
        follow_up = chat.ask(HOW_MANY)
        other = chat.ask(MERGER)  # its own subject: searched alone, though it comes right after
    assert [cites(m) for m in (first, follow_up, other)] == [
        "home_run_record.txt",
        "home_run_record.txt",
        "airline_merger.txt",
    ]
    assert "58 home runs" in follow_up["visible_text"]
    # "he" points back: the follow-up is searched with the question before, and only so.
    assert chat.queries[0] == RECORD and chat.queries[2] == MERGER and len(chat.queries) == 3
    assert chat.queries[1].startswith(HOW_MANY) and "Herons" in chat.queries[1]
    # Context is never logged: no word of either question in qabot's log lines at any level
    # (PTB's own DEBUG lines, seen with --verbose only, print whole updates), only the flag.
    logged = "\n".join(
        r.getMessage() for r in caplog.records if r.name.startswith("qabot") or r.levelno >= logging.INFO
    )
    assert "Herons" not in logged and "hit" not in logged and "(a follow-up)" in logged


def test_a_lowercase_change_of_topic_is_not_taken_for_a_follow_up(
    tg: FakeTelegram, chat_corpus: Settings, chat_retriever: Retriever, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """"coastal airways deal" names nothing by capitals and says little, so by its words it leans
    on the record question a minute before; searched alone it finds the merger clearly better, in
    an article the previous answer did not cite: it is answered as the new topic it is."""
    with chatting(tg, chat_corpus, chat_retriever, monkeypatch) as chat:
        first = chat.ask(RECORD)
        chat.clock.now += 60
        other = chat.ask("coastal airways deal")
        turn = chat.state.memory.last(DEFAULT_USER_ID)
    assert [cites(m) for m in (first, other)] == ["home_run_record.txt", "airline_merger.txt"]
    assert "Herons" in chat.queries[1]  # the words said follow-up…
    assert turn is not None and turn.query == "coastal airways deal"  # …the articles did not


def test_a_pronoun_follow_up_keeps_its_context_without_a_second_search(
    tg: FakeTelegram, chat_corpus: Settings, chat_retriever: Retriever, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """"How much will it pay?" points back with "it": alone it would match the stadium story (the
    city "will pay"), so the search alone is not even asked for; it follows up the merger."""
    with chatting(tg, chat_corpus, chat_retriever, monkeypatch) as chat:
        chat.ask(MERGER)
        chat.clock.now += 60
        follow_up = chat.ask(HOW_MUCH)
    assert cites(follow_up) == "airline_merger.txt"
    assert len(chat.queries) == 2 and chat.queries[1].startswith(HOW_MUCH) and "Coastal" in chat.queries[1]


def test_a_reply_to_an_answer_follows_up_the_question_it_answered(
    tg: FakeTelegram, chat_corpus: Settings, chat_retriever: Retriever, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Replying to an older answer follows up its question, not the latest one; in groups too."""
    with chatting(tg, chat_corpus, chat_retriever, monkeypatch) as chat:
        merger = chat.ask(MERGER)
        chat.ask(RECORD)
        private = chat.ask(HOW_MUCH, reply_to_message_id=merger["message_id"])
        chat.ask(f"/ask@{BOT_USERNAME} {MERGER}", DEFAULT_GROUP_ID)
        group = chat.ask(HOW_MUCH, DEFAULT_GROUP_ID, reply_to_bot=True)
    assert cites(private) == cites(group) == "airline_merger.txt"
    assert "$33.50 for each Coastal Airways share" in private["visible_text"]
    assert chat.queries[2].startswith(HOW_MUCH) and "Coastal" in chat.queries[2]
    assert "Herons" not in chat.queries[2]  # the latest question is not the one replied to


def test_new_forgets_the_conversation(
    tg: FakeTelegram, chat_corpus: Settings, chat_retriever: Retriever, monkeypatch: pytest.MonkeyPatch
) -> None:
    with chatting(tg, chat_corpus, chat_retriever, monkeypatch) as chat:
        answer = chat.ask(RECORD)
        tg.send_text("/new")
        tg.wait_for_messages(2, timeout=15)
        chat.ask(HOW_MANY)
        chat.ask(HOW_MANY, reply_to_message_id=answer["message_id"])  # forgotten too
        sent = exactly(tg, 4)
    assert [m["visible_text"] for m in sent[1:]] == [bot.FORGOTTEN, fmt.NO_ANSWER, fmt.NO_ANSWER]
    assert chat.queries == [RECORD, HOW_MANY, HOW_MANY]
    commands = tg.commands
    assert commands is not None
    assert {"command": "new", "description": "Start afresh: forget the previous question"} in commands
    assert "/new — " in fmt.telegram_visible(fmt.telegram_help_lines())


def test_a_follow_up_after_ten_minutes_is_searched_alone_unless_it_is_a_reply(
    tg: FakeTelegram, chat_corpus: Settings, chat_retriever: Retriever, monkeypatch: pytest.MonkeyPatch
) -> None:
    with chatting(tg, chat_corpus, chat_retriever, monkeypatch) as chat:
        answer = chat.ask(RECORD)
        chat.clock.now += 10 * 60 + 1
        alone = chat.ask(HOW_MANY)
        replied = chat.ask(HOW_MANY, reply_to_message_id=answer["message_id"])
    assert chat.queries[1] == HOW_MANY and alone["visible_text"] == fmt.NO_ANSWER
    assert chat.queries[2] != HOW_MANY and cites(replied) == "home_run_record.txt"


# ---------------------------------------------------------------- 10. small talk


def test_greetings_and_thanks_get_the_short_reply_and_no_search(
    tg: FakeTelegram, corpus: Settings, retriever: Retriever, monkeypatch: pytest.MonkeyPatch
) -> None:
    searched: list[str] = []
    real_search = answer.search

    def spy(*args: Any, **kwargs: Any) -> list[Passage]:
        searched.append(args[1])
        return real_search(*args, **kwargs)

    monkeypatch.setattr(answer, "search", spy)
    with running(tg, corpus, retriever):
        hi = tg.send_text("hi!")
        thanks = tg.send_text("thanks!")
        sent = exactly(tg, 2)
        tg.send_text(QUESTION)
        tg.wait_for_messages(3, timeout=15)
    replies = {m["reply_to_update_id"]: m for m in sent}
    for update, message in ((hi, "hi!"), (thanks, "thanks!")):
        text = small_talk(message)
        assert text is not None and replies[update]["visible_text"] == text
        assert replies[update]["text"] == html.escape(text) and not replies[update]["entities"]
    assert searched and set(searched) == {QUESTION}  # the spy sees searches; small talk made none


def test_thanks_right_after_an_answer_is_small_talk_not_a_follow_up(
    tg: FakeTelegram, chat_corpus: Settings, chat_retriever: Retriever, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Thanks in the same chat, even as a reply to the answer (which always borrows the question
    it answered), gets the small-talk reply: respond() is asked the message as it is."""
    with chatting(tg, chat_corpus, chat_retriever, monkeypatch) as chat:
        first = chat.ask(RECORD)
        replies = []
        for message, kw in (("thanks!", {}), ("Thank you!", {"reply_to_message_id": first["message_id"]})):
            before = len(tg.sent)
            tg.send_text(message, **kw)
            replies.append(tg.wait_for_messages(before + 1, timeout=15)[before])
    assert cites(first) == "home_run_record.txt"
    assert [m["visible_text"] for m in replies] == [small_talk("thanks!"), small_talk("Thank you!")]
    assert chat.queries == [RECORD, "thanks!", "Thank you!"]


def test_a_follow_up_after_thanks_still_leans_on_the_question_before(
    tg: FakeTelegram, chat_corpus: Settings, chat_retriever: Retriever, monkeypatch: pytest.MonkeyPatch
) -> None:
    with chatting(tg, chat_corpus, chat_retriever, monkeypatch) as chat:
        chat.ask(RECORD)
        tg.send_text("thanks!")
        tg.wait_for_messages(2, timeout=15)
        settled(tg)  # the bot remembers (or not) the thanks just after sending its reply
        follow_up = chat.ask(HOW_MANY)
    assert "58 home runs" in follow_up["visible_text"]


def test_a_pronoun_follow_up_finds_its_answer_in_the_previous_replys_second_article(
    tg: FakeTelegram, chat_corpus: Settings, chat_retriever: Retriever, monkeypatch: pytest.MonkeyPatch
) -> None:
    """"when will they try again" after the scrubbed launch: alone it finds nothing; with the
    question before it, the answer is the new date in the article the first reply cited second."""
    with chatting(tg, chat_corpus, chat_retriever, monkeypatch) as chat:
        first = chat.ask("why did the vesta launch get called off")
        chat.clock.now += 60
        again = chat.ask("when will they try again")
    assert [cites(first), cites(again)] == ["vesta_scrub.txt", "vesta_next.txt"]
    assert "[2] Vesta gets a new date" in first["visible_text"]  # the first reply's second article
    assert "September 27" in entity_texts(again, "bold")[0]
    assert not search(chat_retriever, "when will they try again", SearchOptions(k=3))  # alone: nothing


def test_a_bare_when_asks_about_the_answer_before(
    tg: FakeTelegram, chat_corpus: Settings, chat_retriever: Retriever, monkeypatch: pytest.MonkeyPatch
) -> None:
    """"when" alone has no word of its own: it asks when the answer before happened, so that
    sentence may lead again, its day underlined (answer._Said, `about_it`); the new date is the
    answer to "when will they try again", not to this."""
    with chatting(tg, chat_corpus, chat_retriever, monkeypatch) as chat:
        first = chat.ask("why did the vesta launch get called off")
        chat.clock.now += 60
        when = chat.ask("when")
    assert entity_texts(first, "bold")[0].startswith("Engineers called off the launch")
    assert entity_texts(when, "bold")[0].startswith("Engineers called off the launch")
    assert entity_texts(when, "underline") == ["Saturday"]


def test_a_one_word_message_keeps_its_context_unless_alone_it_is_clearly_another_topic(
    tg: FakeTelegram, chat_corpus: Settings, chat_retriever: Retriever, monkeypatch: pytest.MonkeyPatch
) -> None:
    """"who gets the money" names one thing, which the merger article never says; alone it matches
    the stadium story ("the money should go to schools"), but not clearly better than the merger
    with the context, and on six articles no word is rare: typed or as a reply, it asks about the
    merger (answer.stands_alone; its rare-word path is a unit test, test_answer.py)."""
    alone = search(chat_retriever, "who gets the money", SearchOptions(k=1), floor=False)
    assert alone[0].doc_id == "stadium.txt"
    with chatting(tg, chat_corpus, chat_retriever, monkeypatch) as chat:
        chat.ask(MERGER)
        chat.clock.now += 60
        typed = chat.ask("who gets the money")
        chat.ask(MERGER)
        chat.clock.now += 60
        replied = chat.ask("who gets the money", reply_to_bot=True)
    assert [cites(typed), cites(replied)] == ["airline_merger.txt", "airline_merger.txt"]


def test_a_follow_ups_other_answers_come_only_from_the_previous_replys_articles(
    chat_retriever: Retriever,
) -> None:
    """Searched with the previous question's words, "who will pay" also finds the storm and the
    stadium ("the state will pay…"); as a question of its own their sentences may lead beside the
    first answer, as a follow-up of the merger only the previous reply's articles may."""
    query = "who will pay (airline agreed buy Coastal Airways)"
    # Any answering sentence may lead, however far from the question (sentences.Weights.min_cosine
    # alone keeps the storm's and the stadium's from leading a question of its own).
    every = answer.AnswerOptions(also_share=0.0, keep_share=0.0,
                                 weights=dataclasses.replace(sentences.Weights(), min_cosine=0.0))
    search_options = SearchOptions(k=3, min_score=0.0)
    plain = answer.respond(chat_retriever, query, search_options, floor=False, answering=every)
    follow = answer.respond(chat_retriever, query, search_options, floor=False, answering=every,
                            typed="who will pay", previous=["airline_merger.txt"])
    assert follow.question == query  # the context was kept
    assert {plain.results[i].doc_id for i in plain.answers} - {"airline_merger.txt"}  # others lead
    assert [follow.results[i].doc_id for i in follow.answers] == ["airline_merger.txt"]
    assert "$33.50" in follow.results[follow.answers[0]].answer


def test_a_follow_up_is_answered_by_the_sentence_its_own_words_ask_for(
    tg: FakeTelegram, chat_corpus: Settings, chat_retriever: Retriever, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A follow-up is searched with the previous question's words, but those describe what was
    answered: chosen by them, "what did the pilots say" led with the $33.50 sentence again. Its
    own words choose its sentence; a message too thin to say what it asks about ("how many did
    he hit": one content word) is still answered with the context's help."""
    with chatting(tg, chat_corpus, chat_retriever, monkeypatch) as chat:
        merger = chat.ask(MERGER)
        chat.clock.now += 60
        pilots = chat.ask("what did the pilots say")
        chat.ask(RECORD)
        chat.clock.now += 60
        hit = chat.ask("how many did he hit")
    assert "Coastal" in chat.queries[1] and "Herons" in chat.queries[3]  # searched as follow-ups
    assert entity_texts(merger, "bold")[0].startswith("Skyline Air will pay $33.50")
    assert entity_texts(pilots, "bold")[0].startswith("Coastal Airways pilots said they welcomed")
    assert entity_texts(hit, "bold")[0].startswith("The outfielder finished the season with 58 home runs")


def test_a_follow_up_never_leads_with_the_previous_answer_unless_it_holds_the_amount_asked(
    tg: FakeTelegram, chat_corpus: Settings, chat_retriever: Retriever, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 23: never repeat the previous answer to a new question. "what happened to the rocket"
    after the scrub scores the scrub sentence best again (the article's lead, with names and
    "rocket"); the bot leads with the other sentence about the rocket instead. A sentence that
    holds the amount a follow-up asks for may lead again: the reply marks that amount, a new
    answer in it."""
    scrub, rocket = "Why was the Vesta launch scrubbed?", "what happened to the rocket"
    first = answer.respond(chat_retriever, scrub, chat_corpus.bot_search)
    assert first.answer is not None and first.answer.answer.startswith("Engineers called off")
    # What the rule is for: without it, the follow-up leads with the scrub sentence again.
    again = answer.respond(chat_retriever, f"{rocket} ({scrub})", chat_corpus.bot_search, typed=rocket,
                           previous=[p.doc_id for p in first.results])
    assert again.answer is not None and again.answer.answer.startswith("Engineers called off")
    with chatting(tg, chat_corpus, chat_retriever, monkeypatch) as chat:
        chat.ask(scrub)
        chat.clock.now += 60
        board = chat.ask(rocket)
        chat.ask(MERGER)
        chat.clock.now += 60
        share = chat.ask("how much a share")
    assert "Vesta" in chat.queries[1]  # searched as a follow-up
    assert entity_texts(board, "bold")[0].startswith("The crew of four had not yet boarded")
    assert entity_texts(share, "bold")[0].startswith("Skyline Air will pay $33.50")  # as before MERGER's
    assert entity_texts(share, "underline") == ["$33.50"]


# ---------------------------------------------------------------- 1. running it: the real CLI


def bot_env(tg: FakeTelegram | None, token: str | None, var: str = "QABOT_TELEGRAM_TOKEN") -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in transport.TOKEN_VARIABLES}
    if token is not None:
        env[var] = token
    if tg is not None:
        env[transport.API_URL_VARIABLE] = tg.base_url
    return env


def qabot_bot(corpus: Settings, env: dict[str, str], *args: str, **kw: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*QABOT, "bot", "--seeds", str(corpus.seeds), "--index", str(corpus.index), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )


def test_the_bot_builds_a_missing_index_then_answers(
    tg: FakeTelegram, tmp_path: Path, encoder_cache: Path
) -> None:
    """`qabot bot` on seeds with no index yet: reader.open_index builds it (saying so in the log),
    then the first question is answered from it."""
    settings = Settings(paths=PathSettings(seeds=make_seeds(tmp_path / "seeds"), index=tmp_path / "fresh"))
    link_encoder(encoder_cache, settings.index)  # the session's ONNX export: no torch here
    proc = qabot_bot(settings, bot_env(tg, TOKEN))
    try:
        tg.wait_for_call("getUpdates", timeout=120)
        tg.send_text(QUESTION)
        [reply] = tg.wait_for_messages(1, timeout=60)
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=30)
    assert f"No index in {settings.index} yet; building it from {settings.seeds} first." in err, err
    assert "Indexed 5 articles" in err
    assert reply["visible_text"] != fmt.NO_ANSWER and "Aghdam" in reply["visible_text"]


def test_missing_token_is_one_line_and_a_non_zero_exit(corpus: Settings) -> None:
    proc = qabot_bot(corpus, bot_env(None, None))
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1 and out == ""
    assert err.splitlines() == [err.strip()] and err.startswith(
        "Error: no Telegram bot token: set QABOT_TELEGRAM_TOKEN"
    )


@pytest.mark.parametrize("verbose", [False, True], ids=["quiet", "verbose"])
def test_rejected_token_is_one_line_and_never_printed(
    tg: FakeTelegram, corpus: Settings, verbose: bool
) -> None:
    wrong = "654321:WRONG-secret-token"
    proc = qabot_bot(corpus, bot_env(tg, wrong), *(["--verbose"] if verbose else []))
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err
    last = "Error: Telegram rejected the bot token (401 Unauthorized): check QABOT_TELEGRAM_TOKEN"
    assert err.strip().splitlines()[-1].startswith(last)
    if not verbose:
        assert len(err.strip().splitlines()) == 1, err
    else:
        assert "DEBUG" in err  # it did log plenty
    assert "WRONG-secret" not in out + err and "Traceback" not in err
    assert [c["status"] for c in tg.calls if c["method"] == "getMe"] == [401]


@pytest.mark.parametrize("watch", [False, True], ids=["bot", "bot --watch"])
def test_a_rejected_token_is_reported_before_a_first_build(
    tg: FakeTelegram, tmp_path: Path, encoder_cache: Path, watch: bool
) -> None:
    """`qabot bot` on seeds with no index yet and a wrong token: Telegram is asked first, so the
    user hears of the token in a second, not after a build that may take minutes; nothing is built."""
    settings = Settings(paths=PathSettings(seeds=make_seeds(tmp_path / "seeds"), index=tmp_path / "fresh"))
    link_encoder(encoder_cache, settings.index)  # a build would need no torch: it is not what is slow here
    proc = qabot_bot(settings, bot_env(tg, "654321:WRONG-secret-token"), *(["--watch"] if watch else []))
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1 and out == "", err
    assert err.startswith("Error: Telegram rejected the bot token (401 Unauthorized)")
    assert len(err.strip().splitlines()) == 1, err  # no "building it first", no progress
    assert [c["method"] for c in tg.calls] == ["getMe"]
    assert not (settings.index / "manifest.json").exists() and not list(settings.index.glob("gen-*"))


def test_a_token_revoked_mid_run_is_one_line_and_a_non_zero_exit(tg: FakeTelegram, corpus: Settings) -> None:
    """Telegram answering 401 to getUpdates after start-up (token revoked): the bot must not stay
    up deaf and silent, where systemd would never restart it."""
    proc = qabot_bot(corpus, bot_env(tg, TOKEN))
    try:
        tg.wait_for_call("getUpdates", timeout=60)
        tg.fail_next("getUpdates", times=100, status=401, description="Unauthorized")
        tg.send_text("/help")  # ends the long poll in progress; the next one is refused
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, err
    assert (
        err.strip()
        .splitlines()[-1]
        .startswith("Error: Telegram stopped accepting the bot token (401 Unauthorized): it was revoked")
    )
    assert "TEST-secret" not in out + err and "Traceback" not in err and "Exception" not in err
    assert [c["status"] for c in tg.calls if c["method"] == "getUpdates"][-1] == 401


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_the_bot_cleanly(tg: FakeTelegram, corpus: Settings, sig: signal.Signals) -> None:
    """The real `qabot bot` (token in TELEGRAM_BOT_TOKEN, DEBUG logging) answers, then exits 0 on
    a signal; the token appears nowhere in its output, httpx's request lines neither."""
    proc = qabot_bot(corpus, bot_env(tg, TOKEN, "TELEGRAM_BOT_TOKEN"), "--verbose")
    try:
        tg.wait_for_call("getUpdates", timeout=60)
        tg.send_text(QUESTION)
        [reply] = tg.wait_for_messages(1, timeout=15)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "Aghdam-Khankendi" in reply["visible_text"]
    assert "ready: 6 articles" in err and err.rstrip().endswith("qabot.bot: Stopped.")
    assert TOKEN not in out + err and "TEST-secret" not in out + err
    assert "HTTP Request" not in err and "Traceback" not in err
    assert tg.pending_updates == 0  # the last updates were confirmed before exiting


def test_bot_watch_indexes_and_answers_from_each_new_index(tg: FakeTelegram, real_settings: Settings) -> None:
    """`qabot bot --watch`: one process builds the index, keeps it current and answers from it."""
    manifest = real_settings.index / "manifest.json"
    proc = qabot_bot(real_settings, bot_env(tg, TOKEN), "--watch")
    try:
        tg.wait_for_call("getUpdates", timeout=60)
        wait_until(lambda: manifest.is_file())
        tg.send_text(QUESTION)
        [first] = tg.wait_for_messages(1, timeout=15)
        (real_settings.seeds / "penguins.txt").write_text(
            " date 2024-06-01 Emperor penguins in Antarctica huddle together to survive winter storms."
        )
        wait_until(lambda: "penguins.txt" in store.load_snapshot(real_settings.index).articles)
        tg.send_text("How do penguins survive the winter?")
        [second] = tg.wait_for_messages(2, timeout=15)[1:]
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "Aghdam-Khankendi" in first["visible_text"] and "— penguins.txt" in second["visible_text"]
    assert "(1 added, 0 updated, 0 removed, 5 unchanged, 0 skipped)" in err


def wait_until(condition: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_verbose_logging_never_shows_a_question_or_who_asked(
    tg: FakeTelegram, corpus: Settings, retriever: Retriever, caplog: pytest.LogCaptureFixture
) -> None:
    """docs/telegram.md promises question text is never logged: at DEBUG (--verbose) too, where
    python-telegram-bot would log every update it fetches, names and text included."""
    root = logging.getLogger()
    named = ("telegram", "httpx", "httpcore", "faiss")
    saved = root.handlers[:], root.level, {n: logging.getLogger(n).level for n in named}
    question = f"{QUESTION} (asked by zanzibar-quux)"
    try:
        transport.setup_logging(TOKEN, verbose=True)
        root.addHandler(caplog.handler)  # basicConfig(force=True) took pytest's handler away
        with running(tg, corpus, retriever):
            tg.send_text(question, first_name="Wilhelmina", username="wil_h")
            [reply] = tg.wait_for_messages(1, timeout=15)
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        for name, level in saved[2].items():
            logging.getLogger(name).setLevel(level)
    assert "Aghdam-Khankendi" in reply["visible_text"]
    logged = "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    assert any(r.levelno == logging.DEBUG for r in caplog.records)  # it is verbose
    assert "Question from user" in logged  # the length-only line
    for secret in ("zanzibar", "Wilhelmina", "wil_h", QUESTION[:30]):
        assert secret not in logged


# ---------------------------------------------------------------- pure formatting


def _passage(text: str, answer: tuple[int, int], rank: int = 1, title: str = "A <title> & more") -> Passage:
    return Passage(rank=rank, score=0.5, text=text, doc_id=f"dir/{rank}.txt", path=f"/x/dir/{rank}.txt",
                   date=dt.date(2024, 1, 2), title=title, start=100, end=100 + len(text),
                   answer_start=100 + answer[0], answer_end=100 + answer[1])


_TEXT = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=300)
_SENTENCES = st.lists(
    st.text(st.sampled_from("ab <&>\"'é😀-"), min_size=1, max_size=40).map(lambda s: s.strip(" ") + "."),
    min_size=1,
    max_size=60,
).map(" ".join)


@st.composite
def _passages(draw: st.DrawFn) -> list[Passage]:
    out = []
    for rank in range(1, draw(st.integers(1, 6)) + 1):
        text = draw(st.one_of(_TEXT, _SENTENCES).filter(lambda t: t.strip() != ""))
        a = draw(st.integers(0, len(text)))
        b = draw(st.integers(a, len(text)))
        out.append(_passage(text, (a, b), rank, draw(_TEXT)))
    return out


def _squashed(text: str) -> str:
    return "".join(text.split())


@st.composite
def _replies(draw: st.DrawFn) -> Reply:
    """A reply to show: generated passages, some of whose sentences lead it."""
    passages = draw(_passages())
    with_sentence = [i for i, p in enumerate(passages) if p.answer_end > p.answer_start]
    answers = draw(st.lists(st.sampled_from(with_sentence), unique=True, max_size=3)) if with_sentence else []
    as_of = draw(st.none() | st.dates(dt.date(2024, 1, 2), dt.date(2100, 1, 1)))
    notice = draw(st.sampled_from([None, "My newest article is from 2 Jan 2024."]))
    return Reply("q", "answer", tuple(passages), tuple(answers), as_of, notice=notice)


@hsettings(max_examples=150, deadline=None)
@given(reply=_replies(), limit=st.integers(40, 600))
def test_reply_messages_fit_are_valid_html_and_keep_every_passage(reply: Reply, limit: int) -> None:
    messages = fmt.telegram_reply(reply, limit)
    shown = []
    for m in messages:
        visible, _ = parse_html(m)  # Telegram's own parser: balanced tags, nothing unescaped
        assert visible.strip() == fmt.telegram_visible(m)
        assert 0 < utf16_len(visible.strip()) <= limit
        shown.append(visible)
    # The notice, the answer sentences with their [n], a source line per cited result (every
    # result when none is cited), then every passage: everything, in order, once.
    leads = [fmt.printable(reply.results[i].answer) + f"[{reply.results[i].rank}]" for i in reply.answers]
    cited = [reply.results[i] for i in reply.answers] or reply.results
    head = [
        reply.notice or "",
        *(leads or [fmt.NO_SENTENCE]),
        *(f"[{p.rank}] {fmt.source_line(p, reply)}" for p in cited),
    ]
    blocks = [fmt.telegram_visible(fmt.telegram_block(p)) for p in reply.results]
    assert _squashed("".join(shown)) == _squashed("".join(head + blocks))


@hsettings(max_examples=100, deadline=None)
@given(
    sentences=st.lists(
        st.text(st.sampled_from("ab <&>é😀"), min_size=1, max_size=28), min_size=1, max_size=80
    ),
    limit=st.integers(60, 400),
)
def test_overlong_passages_are_cut_after_a_sentence(sentences: list[str], limit: int) -> None:
    text = " ".join(s.strip() + "." for s in sentences)
    block = fmt.telegram_block(_passage(text, (0, len(text) // 2), title="T"))
    pieces = fmt.telegram_cut(block, limit)
    assert all(fmt.telegram_length(p) <= limit and parse_html(p) for p in pieces)
    assert all(fmt.telegram_visible(p).endswith(".") for p in pieces[:-1])
    assert fmt.telegram_visible(pieces[-1]).endswith("— 2024-01-02 — dir/1.txt")


def test_short_passages_are_never_cut() -> None:
    blocks = [fmt.telegram_block(_passage("One. Two. Three.", (5, 9), r)) for r in (1, 2, 3)]
    size = fmt.telegram_length(blocks[0])
    messages = fmt.telegram_split(blocks, limit=2 * size + 2)
    assert messages == ["\n\n".join(blocks[:2]), blocks[2]]


def test_overlong_passage_is_cut_at_a_sentence_end_with_tags_reopened() -> None:
    sentences = [f"Sentence number {i} says something & more." for i in range(200)]
    text = " ".join(sentences)
    span = (text.index("Sentence number 50 "), text.index("Sentence number 150 "))
    messages = fmt.telegram_reply(Reply("q", "answer", (_passage(text, span),), (), dt.date(2024, 1, 9)))
    assert len(messages) >= 3  # the sources, then the quoted passage in pieces
    sources = f"{fmt.NO_SENTENCE}\n\n[1] A <title> & more · 2 Jan 2024 · 1 week ago"
    assert fmt.telegram_visible(messages[0]) == sources
    for m in messages:
        visible, entities = parse_html(m)
        assert utf16_len(visible) <= 4096
        assert visible.endswith((".", "txt", "ago"))  # cut after a sentence; the citation comes last
    for m in messages[1:]:  # the quote is opened again in every piece
        assert m.startswith("<blockquote expandable>") and m.endswith("</blockquote>")
    # the answer's <b> opened again inside the reopened quote
    reopened = [m for m in messages[2:] if m.startswith("<blockquote expandable><b>Sentence number ")]
    assert reopened and parse_html(reopened[0])[1][:2] == [
        {"type": "expandable_blockquote", "offset": 0, "length": ANY},
        {"type": "bold", "offset": 0, "length": ANY},
    ]
    assert messages[-1].endswith("— dir/1.txt</i></blockquote>")


def test_a_sentence_longer_than_a_message_is_cut_at_spaces_then_anywhere() -> None:
    words = fmt.telegram_cut("<b>" + "word " * 30 + "</b>", 22)
    assert all(fmt.telegram_length(w) <= 22 for w in words) and all(parse_html(w) for w in words)
    assert all(fmt.telegram_visible(w).startswith("word") for w in words)
    glued = fmt.telegram_cut("x" * 50 + "&amp;" + "y" * 10, 20)
    assert [fmt.telegram_visible(g) for g in glued] == ["x" * 20, "x" * 20, "x" * 10 + "&" + "y" * 9, "y"]


@hsettings(max_examples=50, deadline=None)
@given(articles=st.lists(st.tuples(_TEXT, st.none() | st.dates(), _TEXT), max_size=60),
       page=st.integers(-2, 10), size=st.integers(1, 100))
def test_every_sources_page_fits_one_message(
    articles: list[tuple[str, dt.date | None, str]], page: int, size: int
) -> None:
    at = fmt.sources_page(len(articles), page, size)
    text = fmt.telegram_sources(articles[at.offset : at.offset + at.size], len(articles), at)
    visible, _ = parse_html(text)
    assert 1 <= at.page <= at.pages and utf16_len(visible) <= 4096
    if articles:
        assert f"(page {at.page} of {at.pages})" in visible


def test_welcome_says_what_is_indexed() -> None:
    assert "No articles are indexed yet" in fmt.telegram_welcome(0, None, None, 3)
    one = fmt.telegram_welcome(1, dt.date(2024, 1, 1), dt.date(2024, 1, 1), 3)
    assert "<b>1 news article</b>, from 2024-01-01." in one
    assert "from up to 3 articles" in one and parse_html(one)


def test_bot_command_has_help_with_an_example() -> None:
    proc = subprocess.run([*QABOT, "bot", "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "QABOT_TELEGRAM_TOKEN" in proc.stdout and "Example" in proc.stdout
