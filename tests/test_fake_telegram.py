"""End-to-end checks that FakeTelegram behaves like the Bot API for a real PTB 22 Application."""

from __future__ import annotations

import asyncio
import datetime as dtm
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from telegram import Bot, Update
from telegram.constants import ParseMode
from telegram.error import BadRequest, Conflict, InvalidToken, NetworkError, RetryAfter
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from tests.fake_telegram import (
    BOT_USERNAME,
    DEFAULT_USER_ID,
    FakeTelegram,
    HtmlParseError,
    detect_entities,
    parse_html,
)

TOKEN = "123456:TEST-token"


# ----------------------------------------------------------------------------------------------
# Harness
# ----------------------------------------------------------------------------------------------


class RunningApp:
    """Runs a PTB Application (polling) in its own thread and event loop."""

    def __init__(self, application: Application) -> None:  # type: ignore[type-arg]
        self.application = application
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    async def _main(self) -> None:
        """Start, poll until told to stop, then shut down cleanly."""
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            async with self.application:
                await self.application.start()
                assert self.application.updater is not None
                await self.application.updater.start_polling(poll_interval=0, timeout=1)
                self._ready.set()
                await self._stop.wait()
                await self.application.updater.stop()
                await self.application.stop()
        except BaseException as exc:  # surfaced in the test thread
            self._error = exc
        finally:
            self._ready.set()

    def __enter__(self) -> RunningApp:
        """Start and wait until polling runs."""
        self._thread.start()
        assert self._ready.wait(10), "application did not start"
        if self._error is not None:
            raise self._error
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Stop polling and re-raise anything the application thread raised."""
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
        assert not self._thread.is_alive(), "application did not stop"
        if self._error is not None:
            raise self._error


def build_app(tg: FakeTelegram, token: str = TOKEN) -> Application:  # type: ignore[type-arg]
    """A real PTB Application pointed at the fake."""
    return ApplicationBuilder().token(token).base_url(tg.base_url).build()


async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Reply with the same text, quoting the user's message."""
    assert update.message is not None and update.message.text is not None
    await update.message.reply_text(update.message.text, do_quote=True)


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Answer /start with HTML."""
    assert update.effective_chat is not None
    await context.bot.send_message(
        update.effective_chat.id, "<b>Hello</b> &amp; welcome", parse_mode=ParseMode.HTML
    )


def with_bot(tg: FakeTelegram, action: Callable[[Bot], Awaitable[Any]]) -> Any:
    """Run one coroutine against an initialised PTB Bot (initialize() calls getMe)."""

    async def main() -> Any:
        async with Bot(TOKEN, base_url=tg.base_url) as bot:
            return await action(bot)

    return asyncio.run(main())


def raw_post(url: str, data: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    """POST a form with the standard library and return (status, JSON body)."""
    body = urllib.parse.urlencode(data or {}).encode()
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=body), timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def retry_after_seconds(exc: RetryAfter) -> float:
    """RetryAfter.retry_after is int (deprecated) or timedelta depending on PTB_TIMEDELTA."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, dtm.timedelta) else float(value)


@pytest.fixture
def tg() -> Iterator[FakeTelegram]:
    """A running fake server."""
    with FakeTelegram(token=TOKEN) as fake:
        yield fake
        assert fake.server_errors == []


# ----------------------------------------------------------------------------------------------
# The real Application against the fake
# ----------------------------------------------------------------------------------------------


def test_application_echo_and_commands(tg: FakeTelegram) -> None:
    """Polling delivers messages, handlers answer, replies and commands look like Telegram's."""
    app = build_app(tg)
    app.add_handler(CommandHandler("start", start))
    app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, echo))
    with RunningApp(app):
        update_id = tg.send_text("hello bot")
        [reply] = tg.wait_for_messages(1, chat_id=DEFAULT_USER_ID, timeout=5)
        assert reply["text"] == "hello bot"
        assert reply["reply_to_update_id"] == update_id
        assert reply["reply_parameters"]["message_id"] == reply["reply_to_message_id"]
        assert reply["time"] > tg.update_times[update_id]

        group_update = tg.send_text(f"/start@{BOT_USERNAME}", chat_type="group")
        [welcome] = tg.wait_for_messages(1, after_update=group_update, timeout=5)
        assert welcome["visible_text"] == "Hello & welcome"
        assert welcome["entities"] == [{"type": "bold", "offset": 0, "length": 5}]
        assert welcome["chat_id"] < 0

        # A command for another bot is not ours; a plain message after it proves it was skipped.
        tg.send_text("/start@some_other_bot", chat_type="group")
        marker = tg.send_text("after", chat_type="group")
        [after] = tg.wait_for_messages(1, after_update=marker - 1, timeout=5)
        assert after["text"] == "after"

    methods = {call["method"] for call in tg.calls}
    assert {"getMe", "deleteWebhook", "getUpdates", "sendMessage"} <= methods
    assert tg.pending_updates == 0  # PTB confirmed everything on shutdown


def test_wrong_token_raises_invalid_token(tg: FakeTelegram) -> None:
    """A token the server does not know answers 401, which PTB turns into InvalidToken."""

    async def main() -> None:
        await build_app(tg, token="654321:WRONG-token").initialize()

    with pytest.raises(InvalidToken):
        asyncio.run(main())
    assert tg.calls[-1]["status"] == 401


def test_message_length_is_checked_on_visible_utf16_text(tg: FakeTelegram) -> None:
    """Over 4096 UTF-16 units after HTML parsing is 'message is too long'."""

    async def action(bot: Bot) -> None:
        with pytest.raises(BadRequest, match="(?i)message is too long"):
            await bot.send_message(1, "x" * 5000)
        await bot.send_message(1, "x" * 4096)
        await bot.send_message(1, "<b>" + "x" * 4096 + "</b>", parse_mode=ParseMode.HTML)
        with pytest.raises(BadRequest, match="(?i)message is too long"):
            await bot.send_message(1, "\N{GRINNING FACE}" * 2049)  # 4098 UTF-16 units
        with pytest.raises(BadRequest, match="(?i)message text is empty"):
            await bot.send_message(1, "  \n ")

    with_bot(tg, action)
    assert [len(entry["visible_text"]) for entry in tg.sent] == [4096, 4096]


def test_bad_html_is_rejected_like_telegram(tg: FakeTelegram) -> None:
    """Malformed HTML raises BadRequest with Telegram's description."""

    async def action(bot: Bot) -> list[str]:
        messages = []
        for text in ("<b>unclosed", "<div>x</div>", "1 < 2"):
            with pytest.raises(BadRequest) as info:
                await bot.send_message(1, text, parse_mode=ParseMode.HTML)
            messages.append(str(info.value))
        return messages

    messages = with_bot(tg, action)
    # PTB strips "Bad Request: " and capitalize()s the rest, lower-casing the tdlib part.
    assert all(message.lower().startswith("can't parse entities: ") for message in messages)
    raw = [call["error"] for call in tg.calls if call["status"] == 400]
    assert raw == [
        'Bad Request: can\'t parse entities: Can\'t find end tag corresponding to start tag "b"',
        'Bad Request: can\'t parse entities: Unsupported start tag "div" at byte offset 0',
        'Bad Request: can\'t parse entities: Unsupported start tag "" at byte offset 2',
    ]
    assert tg.sent == []


# RetryAfter's constructor itself reads the deprecated int-valued retry_after.
@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
def test_injected_failures_map_to_ptb_errors(tg: FakeTelegram) -> None:
    """429 -> RetryAfter, 502 -> NetworkError, dropped connection -> NetworkError."""
    tg.fail_next("sendMessage", times=1, retry_after=1)
    tg.fail_next("sendMessage", status=502)
    tg.fail_next("sendMessage", status=0)

    async def action(bot: Bot) -> None:
        with pytest.raises(RetryAfter) as info:
            await bot.send_message(1, "a")
        assert retry_after_seconds(info.value) == 1
        with pytest.raises(NetworkError, match="Bad Gateway"):
            await bot.send_message(1, "b")
        with pytest.raises(NetworkError):
            await bot.send_message(1, "c")
        await bot.send_message(1, "d")

    with_bot(tg, action)
    assert [entry["text"] for entry in tg.sent] == ["d"]
    [limited] = [call for call in tg.calls if call["status"] == 429]
    assert limited["error"] == "Too Many Requests: retry after 1"


# ----------------------------------------------------------------------------------------------
# getUpdates semantics
# ----------------------------------------------------------------------------------------------


def test_long_poll_wakes_on_injection_and_offset_confirms(tg: FakeTelegram) -> None:
    """A blocked poll returns as soon as an update arrives; offset discards older ones."""
    injector = threading.Timer(0.3, lambda: tg.send_text("late"))

    async def action(bot: Bot) -> None:
        started = time.monotonic()
        injector.start()
        [first] = await bot.get_updates(timeout=10)
        assert 0.2 < time.monotonic() - started < 2
        assert first.message is not None and first.message.text == "late"
        for text in ("a", "b", "c"):
            tg.send_text(text)
        again = await bot.get_updates(timeout=0, limit=2)
        assert [u.update_id for u in again] == [first.update_id, first.update_id + 1]
        rest = await bot.get_updates(offset=again[-1].update_id + 1, timeout=0)
        assert [u.message.text for u in rest if u.message] == ["b", "c"]
        assert tg.pending_updates == 2
        assert await bot.get_updates(offset=rest[-1].update_id + 1, timeout=0) == ()

    with_bot(tg, action)


def test_allowed_updates_filter_and_raw_updates(tg: FakeTelegram) -> None:
    """Raw updates pass through; allowed_updates drops other kinds."""
    sticker: dict[str, Any] = {"file_id": "s1", "file_unique_id": "u1", "type": "regular"}
    sticker.update(width=512, height=512, is_animated=False, is_video=False)
    message = {"message_id": 900, "date": 0, "chat": {"id": 5, "type": "private"}}
    sticker_update = tg.send_update({"message": {**message, "sticker": sticker}})
    tg.send_update({"edited_message": {**message, "text": "edited", "edit_date": 1}})
    tg.send_text("filtered out")

    async def action(bot: Bot) -> None:
        [first] = await bot.get_updates(timeout=0, limit=1)
        assert first.message is not None and first.message.sticker is not None
        assert first.message.sticker.file_id == "s1"
        updates = await bot.get_updates(
            offset=sticker_update + 1, timeout=0, allowed_updates=["edited_message"]
        )
        assert [u.edited_message.text for u in updates if u.edited_message] == ["edited"]

    with_bot(tg, action)
    assert tg.pending_updates == 1


def test_strict_mode_replies_and_negative_offset() -> None:
    """strict=True checks chats and reply targets; reply_to_bot builds reply_to_message."""
    with FakeTelegram(token=TOKEN, strict=True) as tg:
        tg.send_text("hi", chat_id=42)

        async def action(bot: Bot) -> None:
            [update] = await bot.get_updates(timeout=0)
            assert update.message is not None
            with pytest.raises(BadRequest, match="(?i)chat not found"):
                await bot.send_message(43, "nobody")
            with pytest.raises(BadRequest, match="(?i)message to be replied not found"):
                await bot.send_message(42, "x", reply_to_message_id=9999)
            answer = await update.message.reply_text("answer", do_quote=True)
            tg.send_text("thanks", chat_id=42, reply_to_bot=True)
            tg.send_text("latest", chat_id=42)
            [last] = await bot.get_updates(offset=-1, timeout=0)  # forget all but the last
            assert last.message is not None and last.message.text == "latest"
            assert tg.pending_updates == 1
            [thanks] = [i["update"]["message"] for i in tg.injected if "thanks" in str(i)]
            assert thanks["reply_to_message"]["message_id"] == answer.message_id
            assert thanks["reply_to_message"]["from"]["is_bot"] is True

        with_bot(tg, action)


def test_second_poll_conflicts_and_close_wakes_poll() -> None:
    """A newer getUpdates ends an older one with 409; close() releases a blocked poll."""
    with FakeTelegram(token=TOKEN) as tg:
        url = f"{tg.api_url}/getUpdates"
        results: list[tuple[int, dict[str, Any]]] = []
        first = threading.Thread(target=lambda: results.append(raw_post(url, {"timeout": "30"})))
        first.start()
        tg.wait_for_call("getUpdates", timeout=5)
        time.sleep(0.1)
        second = threading.Thread(target=lambda: results.append(raw_post(url, {"timeout": "30"})))
        second.start()
        first.join(5)
        assert results[0][0] == 409 and "terminated by other getUpdates" in str(results[0][1])
        started = time.monotonic()
    second.join(5)
    assert time.monotonic() - started < 2
    assert results[1] == (200, {"ok": True, "result": []})


def test_conflict_surfaces_in_ptb(tg: FakeTelegram) -> None:
    """PTB maps the 409 to telegram.error.Conflict."""
    tg.fail_next("getUpdates", status=409, description="Conflict: terminated by other")

    with pytest.raises(Conflict):
        with_bot(tg, lambda bot: bot.get_updates(timeout=0))


# ----------------------------------------------------------------------------------------------
# Raw protocol and other methods
# ----------------------------------------------------------------------------------------------


def test_raw_protocol_answers(tg: FakeTelegram) -> None:
    """Status codes and bodies match the Bot API exactly."""
    assert raw_post(f"{tg.api_url}/noSuchMethod") == (
        404,
        {"ok": False, "error_code": 404, "description": "Not Found"},
    )
    assert raw_post(f"{tg.base_url}999:nope/getMe") == (
        401,
        {"ok": False, "error_code": 401, "description": "Unauthorized"},
    )
    status, body = raw_post(f"{tg.api_url}/getme")  # method names are case-insensitive
    assert status == 200 and body["result"]["username"] == BOT_USERNAME
    assert raw_post(f"{tg.api_url}/sendMessage", {"text": "x"})[1]["description"] == (
        "Bad Request: chat_id is empty"
    )
    status, body = raw_post(f"{tg.api_url}/sendChatAction", {"chat_id": "1", "action": "dance"})
    assert (status, body["description"]) == (400, "Bad Request: wrong parameter action in request")


def test_commands_edit_and_callback(tg: FakeTelegram) -> None:
    """setMyCommands is recorded; edits and callback answers behave like Telegram."""
    from telegram import BotCommand

    async def action(bot: Bot) -> None:
        await bot.set_my_commands([BotCommand("ask", "Ask a question")])
        assert [c.command for c in await bot.get_my_commands()] == ["ask"]
        sent = await bot.send_message(7, "draft")
        edited = await bot.edit_message_text("final", chat_id=7, message_id=sent.message_id)
        assert not isinstance(edited, bool) and edited.text == "final"
        with pytest.raises(BadRequest, match="(?i)message is not modified"):
            await bot.edit_message_text("final", chat_id=7, message_id=sent.message_id)
        with pytest.raises(BadRequest, match="(?i)message to edit not found"):
            await bot.edit_message_text("x", chat_id=7, message_id=999)
        tg.send_callback_query("more", chat_id=7)
        [update] = await bot.get_updates(timeout=0)
        assert update.callback_query is not None
        assert update.callback_query.message is not None
        assert update.callback_query.message.message_id == sent.message_id
        assert await bot.answer_callback_query(update.callback_query.id, text="ok")

    with_bot(tg, action)
    assert tg.commands == [{"command": "ask", "description": "Ask a question"}]
    assert [e["visible_text"] for e in tg.edits] == ["final"]
    assert tg.callback_answers[0]["text"] == "ok"


def test_wait_for_messages_timeout_explains(tg: FakeTelegram) -> None:
    """A timeout lists what was sent and which calls failed."""
    with_bot(tg, lambda bot: bot.send_message(3, "only one"))
    tg.fail_next("sendMessage", status=400, description="Bad Request: chat not found")
    with pytest.raises(BadRequest):
        with_bot(tg, lambda bot: bot.send_message(4, "lost"))
    with pytest.raises(AssertionError) as info:
        tg.wait_for_messages(2, timeout=0.2)
    report = str(info.value)
    assert "got 1" in report and "'only one'" in report and "chat not found" in report


# ----------------------------------------------------------------------------------------------
# Parsers
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("html", "text", "entities"),
    [
        ("a &lt;b&gt; &amp;&quot; &#65;&#x42;", 'a <b> &" AB', []),
        ("AT&T &nbsp;", "AT&T &nbsp;", []),
        ("<b>bo<i>th</i></b>", "both", [("bold", 0, 4), ("italic", 2, 2)]),
        ("\N{GRINNING FACE}<u>x</u>", "\N{GRINNING FACE}x", [("underline", 2, 1)]),
        ('<a href="https://e.com/?a=1&amp;b=2">l</a>', "l", [("text_link", 0, 1)]),
        ('<span class="tg-spoiler">s</span><tg-spoiler>t</tg-spoiler>', "st", None),
        ('<pre><code class="language-py">x</code></pre>', "x", [("pre", 0, 1)]),
        ("<blockquote expandable>q</blockquote>", "q", [("expandable_blockquote", 0, 1)]),
        ("<b></b>x", "x", []),
    ],
)
def test_parse_html_accepts(
    html: str, text: str, entities: list[tuple[str, int, int]] | None
) -> None:
    """Valid Telegram HTML yields visible text and UTF-16 entities."""
    visible, parsed = parse_html(html)
    assert visible == text
    if entities is not None:
        assert [(e["type"], e["offset"], e["length"]) for e in parsed] == entities


@pytest.mark.parametrize(
    ("html", "error"),
    [
        ("<b>x", 'Can\'t find end tag corresponding to start tag "b"'),
        ("x <div>y</div>", 'Unsupported start tag "div" at byte offset 2'),
        ("<b>x</i>", 'Unmatched end tag at byte offset 4, expected "</b>", found "</i>"'),
        ("x</b>", "Unexpected end tag at byte offset 1"),
        ("<b", "Unclosed start tag at byte offset 0"),
        ("<a href=http://x>y</a>", "Unexpected end of name token at byte offset 8"),
        ('<span class="x">y</span>', 'Tag "span" must have class "tg-spoiler" at byte offset 0'),
        ('<tg-emoji emoji-id="abc">y</tg-emoji>', "Invalid custom emoji identifier specified"),
    ],
)
def test_parse_html_rejects(html: str, error: str) -> None:
    """Invalid HTML fails with tdlib's wording."""
    with pytest.raises(HtmlParseError) as info:
        parse_html(html)
    assert str(info.value) == error


def test_detect_entities_for_commands_and_mentions() -> None:
    """Incoming messages carry bot_command and mention entities like Telegram's."""
    text = f"/ask@{BOT_USERNAME} what? @{BOT_USERNAME} /x@ab a/b @abc"
    got = [(e["type"], e["offset"], e["length"]) for e in detect_entities(text)]
    command_length = len(f"/ask@{BOT_USERNAME}")
    mention_offset = command_length + len(" what? ")
    assert got == [
        ("bot_command", 0, command_length),
        ("mention", mention_offset, len(BOT_USERNAME) + 1),
    ]
