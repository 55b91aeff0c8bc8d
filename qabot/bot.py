"""Telegram handlers: what `qabot bot` does with each message, command or button press.

Shaped like python-telegram-bot's examples: `build_application()` wires small async handlers
into an `Application` whose `bot_data` holds the Retriever; `run_bot()` is what the CLI calls.
A handler is parse → `answer.respond()` (in a worker thread: never on the event loop) → `format.telegram_*`
→ send. How the bot reaches Telegram (token, sending limits, polling, log redaction) is transport.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import re
import signal
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from telegram import (
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
    Message,
    MessageEntity,
    Update,
)
from telegram.constants import ChatAction, ChatType, ParseMode
from telegram.error import BadRequest, Forbidden, InvalidToken, TelegramError
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    Defaults,
    MessageHandler,
    filters,
)

from . import format as fmt
from .answer import respond
from .catalog import CatalogSummary, CatalogView
from .config import SearchOptions, Settings
from .conversation import Memory, Turn, contextualize
from .errors import BadQuestion, ConfigError, IndexNotFound, QabotError
from .progress import LogLines, Reporter
from .reader import Retriever, open_index
from .retrieve import MAX_QUESTION_CHARS, check_question, search
from .smalltalk import small_talk
from .transport import (
    API_URL_VARIABLE,
    DEFAULT_API_URL,
    PollRequest,
    RateLimit,
    Redact,
    api_url_from_env,
    builder,
    check_token,
    poll,
    setup_logging,
    token_from_env,
)

logger = logging.getLogger(__name__)

# What the handlers below take; Telegram sends nothing else (no reactions, member changes…).
ALLOWED_UPDATES = [Update.MESSAGE, Update.EDITED_MESSAGE, Update.CALLBACK_QUERY]
COMMANDS = [
    BotCommand("ask", "Ask a question about the articles"),
    BotCommand("sources", "List the indexed articles"),
    BotCommand("new", "Start afresh: forget the previous question"),
    BotCommand("help", "How to ask"),
    BotCommand("start", "What this bot is"),
]

# No example question: any fixed one names an article this index may not have.
ASK_USAGE = "Ask like this: <code>/ask &lt;your question about the news&gt;</code>"
MENTION_USAGE = "Put your question after the mention: <code>@{bot} &lt;your question&gt;</code>"
NOT_TEXT = "I can only read text. Type your question as a message."
EDITED = "I answer new messages only: send the corrected question as a new message."
UNKNOWN_COMMAND = "I don't know that command. /help shows what I can do."
REFUSED = "Sorry, this bot is private: it only answers the people and chats it was set up for."
SLOW_DOWN = ("You're asking faster than I can answer (at most {limit} questions a minute). "
             "Please wait {seconds} s and ask again.")
TOO_LONG = ("That question is {length:,} characters long; I can take up to {limit:,}. "
            "Please ask something shorter.")
NO_INDEX = "No articles are indexed yet, so I can't answer. Please try again later."
UNAVAILABLE = "Sorry, I can't search the articles right now. Please try again in a minute."
SORRY = "Sorry, something went wrong while answering. Please try again."
FORGOTTEN = "New conversation: your next question stands on its own."


# ---------------------------------------------------------------- the application


@dataclass
class BotState:
    """What every handler needs, kept in `application.bot_data["qabot"]`."""

    settings: Settings
    retriever: Retriever
    limiter: RateLimit
    options: SearchOptions  # settings.bot_search: the bot's answers and confidence floor
    polling: PollRequest  # getUpdates' connection, which `serve` hands to `transport.poll`
    # Greetings and thanks cost no search: they never use up the question limit ("thanks!" after
    # ten quick questions is answered), but have a window of their own so a flood is not answered
    # message for message either.
    chatter: RateLimit
    # Each chat's last questions, so a follow-up ("how many did he hit?") is searched with the
    # question it leans on. Only here, in memory: never written anywhere, never logged.
    memory: Memory = field(default_factory=Memory)
    clock: Callable[[], float] = time.monotonic  # for follow-up timing; tests move it forward
    # Searches are CPU-bound: running more at once than there are cores answers a burst no
    # sooner, only later for the first askers. This keeps it first come, first served.
    searching: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(os.cpu_count() or 1))


def build_application(
    settings: Settings, token: str, base_url: str = DEFAULT_API_URL,
    retriever: Retriever | None = None,
) -> Application:
    """The bot, ready to poll: handlers, error handler, rate limits and start-up hook wired in."""
    polling = PollRequest()
    app = (
        builder(token, base_url, polling)
        # Every reply quotes what it answers (many questions can be in flight); a question
        # deleted meanwhile must not stop its answer; article text makes no link previews.
        .defaults(Defaults(parse_mode=ParseMode.HTML, do_quote=True, allow_sending_without_reply=True,
                           link_preview_options=LinkPreviewOptions(is_disabled=True)))
        .post_init(_post_init)
        .build()
    )
    app.bot_data["qabot"] = BotState(
        settings=settings,
        retriever=retriever or Retriever.for_settings(settings),
        limiter=RateLimit(settings.bot.rate_limit_per_minute),
        chatter=RateLimit(settings.bot.rate_limit_per_minute),
        options=settings.bot_search,
        polling=polling,
    )
    polling.on_rejected = app.stop_running
    new = filters.UpdateType.MESSAGE  # edited messages are not questions asked again
    app.add_handler(CommandHandler("start", start, filters=new))
    app.add_handler(CommandHandler("help", reply_with(fmt.telegram_help_lines()), filters=new))
    app.add_handler(CommandHandler("ask", ask, filters=new))
    app.add_handler(CommandHandler("sources", sources, filters=new))
    app.add_handler(CommandHandler("new", forget, filters=new))
    app.add_handler(CallbackQueryHandler(sources_page, pattern=r"^sources:\d+$"))
    private = filters.ChatType.PRIVATE  # in groups, anything else is not for the bot: silence
    app.add_handler(MessageHandler(new & filters.COMMAND & private, reply_with(UNKNOWN_COMMAND)))
    app.add_handler(MessageHandler(new & filters.TEXT & ~filters.COMMAND, text_message))
    app.add_handler(MessageHandler(new & filters.CAPTION, caption_message))  # a photo's, a file's
    app.add_handler(MessageHandler(new & private, reply_with(NOT_TEXT)))  # stickers, voice, bare photos…
    app.add_handler(MessageHandler(filters.UpdateType.EDITED_MESSAGE & private, reply_with(EDITED)))
    app.add_error_handler(on_error)
    return app


def _state(context: ContextTypes.DEFAULT_TYPE) -> BotState:
    state: BotState = context.bot_data["qabot"]
    return state


async def _post_init(app: Application) -> None:
    """Set the command menu and load the index and the model, so the first question is fast."""
    try:
        await app.bot.set_my_commands(COMMANDS)
    except TelegramError as err:
        logger.warning("Could not set the command menu: %s", err)
    state: BotState = app.bot_data["qabot"]
    summary = await asyncio.to_thread(_prewarm, state)
    logger.info("@%s ready: %s; answering with up to %d passages, floor %.2f",
                app.bot.username, summary, state.options.k, state.options.floor)


def _prewarm(state: BotState) -> str:
    """Load the snapshot, its tables and the encoder by asking one question; describe the index."""
    try:
        search(state.retriever, "warm-up", replace(state.options, k=1), floor=False)
        known = state.retriever.snapshot().catalog.summary()
    except QabotError as err:
        logger.warning("No usable index yet (%s); questions get an apology until there is one", err)
        return "no index yet"
    dates = f" ({known.first} to {known.last})" if known.first else ""
    return f"{known.articles} articles{dates} in {state.settings.index}"


# ---------------------------------------------------------------- handlers


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/start: what the bot is, how many articles it knows and from when, how to ask."""
    message = update.effective_message
    if message is None or not await _may_reply(update, context):
        return
    catalog = await _catalog(context)
    known = await asyncio.to_thread(catalog.summary) if catalog else CatalogSummary(0, None, None)
    await message.reply_text(fmt.telegram_welcome(known.articles, known.first, known.last,
                                                  _state(context).options.k,
                                                  group=message.chat.type != ChatType.PRIVATE))


async def _catalog(context: ContextTypes.DEFAULT_TYPE) -> CatalogView | None:
    """The current generation's catalog; None when there is no usable index."""
    try:
        snap = await asyncio.to_thread(_state(context).retriever.snapshot)  # may load a new one
    except QabotError:
        return None
    return snap.catalog


async def ask(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/ask <question>: the way to ask in a group (works in private chats too)."""
    message = update.effective_message
    if message is None or (words := _words(message)) is None:
        return
    parts = words.split(maxsplit=1)  # keep the question's own spacing and punctuation
    question = parts[1] if len(parts) > 1 else ""
    if not question.strip():
        if await _may_reply(update, context):
            await message.reply_text(ASK_USAGE)
        return
    await _answer(update, context, question)


async def text_message(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Any text in a private chat is a question; in a group only one meant for the bot."""
    message = update.effective_message
    if message is None or (words := _words(message)) is None or update.effective_chat is None:
        return
    kind = update.effective_chat.type
    username = context.bot.username
    if kind == ChatType.PRIVATE:
        question = _strip_mention(words, username)
    elif kind in (ChatType.GROUP, ChatType.SUPERGROUP) and _meant_for_bot(message, context.bot.id,
                                                                           username):
        question = _strip_mention(words, username)
        if not question.strip():
            if await _may_reply(update, context):
                await message.reply_text(MENTION_USAGE.format(bot=username))
            return
    else:
        return  # group chatter and channels: never answer
    await _answer(update, context, question)


async def caption_message(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A photo, video or document with a caption: the caption is read as a text message would
    be, under the same rules in groups ("/ask …", a mention, a reply). Other commands in a
    caption are not taken: in a private chat the sender is asked for text."""
    message = update.effective_message
    if message is None or message.caption is None:
        return
    command = _caption_command(message, context.bot.username)
    if command is None:
        await text_message(update, context)
    elif command == "ask":
        await ask(update, context)
    elif message.chat.type == ChatType.PRIVATE and await _may_reply(update, context):
        await message.reply_text(NOT_TEXT)


def _caption_command(message: Message, username: str) -> str | None:
    """The command a caption starts with ("ask" for "/ask@this_bot …"; "" for another bot's),
    None when it starts with none (PTB's CommandHandler reads message texts only)."""
    first = message.caption_entities[0] if message.caption_entities else None
    if first is None or first.type != MessageEntity.BOT_COMMAND or first.offset != 0:
        return None
    name, _, addressee = message.parse_caption_entity(first)[1:].partition("@")
    return "" if addressee and addressee.lower() != username.lower() else name.lower()


def _words(message: Message) -> str | None:
    """What a message says: its text, or else its caption."""
    return message.text if message.text is not None else message.caption


def reply_with(text: str) -> Callable[[Update, ContextTypes.DEFAULT_TYPE], Coroutine[Any, Any, None]]:
    """A handler answering `text` (HTML) to whoever the allowlists admit: /help, stickers, edits…"""

    async def handler(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if update.effective_message is not None and await _may_reply(update, context):
            await update.effective_message.reply_text(text)

    return handler


async def forget(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/new: forget the chat's previous questions, so the next one is searched on its own."""
    message = update.effective_message
    if message is None or not await _may_reply(update, context):
        return
    _state(context).memory.forget(message.chat_id)
    await message.reply_text(FORGOTTEN)


async def sources(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/sources [page]: the indexed articles, newest first, a page at a time."""
    message = update.effective_message
    if message is None or not await _may_reply(update, context):
        return
    page = int(context.args[0]) if context.args and context.args[0].isdigit() else 1
    text, markup = await _sources_page(context, page)
    await message.reply_text(text, reply_markup=markup)


async def sources_page(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A ◀/▶ button under a /sources page: show the other page in the same message."""
    query = update.callback_query
    if query is None or query.data is None:
        return
    if not _allowed(_state(context).settings, update):
        await query.answer(REFUSED, show_alert=True)
        return
    text, markup = await _sources_page(context, int(query.data.split(":")[1]))
    await query.answer()
    with contextlib.suppress(BadRequest):  # "message is not modified": the same page again
        await query.edit_message_text(text, reply_markup=markup)


async def _sources_page(
    context: ContextTypes.DEFAULT_TYPE, page: int
) -> tuple[str, InlineKeyboardMarkup | None]:
    """The text and ◀/▶ buttons of one /sources page."""
    catalog = await _catalog(context)
    text, at = await asyncio.to_thread(sources_text, catalog, page,
                                       _state(context).settings.bot.sources_page_size)
    newer = [InlineKeyboardButton("◀ Newer", callback_data=f"sources:{at.page - 1}")] if at.page > 1 else []
    older = [InlineKeyboardButton("Older ▶", callback_data=f"sources:{at.page + 1}")] \
        if at.page < at.pages else []
    buttons = newer + older
    return text, InlineKeyboardMarkup([buttons]) if buttons else None


def sources_text(catalog: CatalogView | None, page: int, page_size: int) -> tuple[str, fmt.SourcesPage]:
    """One /sources page as HTML: two queries (the count, then the page), whatever the catalog's size."""
    total = catalog.count("articles") if catalog else 0
    at = fmt.sources_page(total, page, page_size)
    shown = catalog.newest(at.offset, at.size) if catalog else []
    articles = [(a.title, dt.date.fromisoformat(a.date) if a.date else None, a.doc_id) for a in shown]
    return fmt.telegram_sources(articles, total, at), at


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Log the traceback; tell the user something went wrong. The bot keeps running."""
    update_id = update.update_id if isinstance(update, Update) else None
    logger.error("Error while handling update %s", update_id, exc_info=context.error)
    if isinstance(context.error, Forbidden) or not isinstance(update, Update):
        return  # blocked by the user, or not about a chat at all
    message = update.effective_message
    if message is not None and update.callback_query is None:
        with contextlib.suppress(TelegramError):
            await message.reply_text(SORRY)


# ---------------------------------------------------------------- answering


async def _answer(update: Update, context: ContextTypes.DEFAULT_TYPE, question: str) -> None:
    """Admit, rate-limit, check, search in a worker thread (typing meanwhile), reply."""
    message, user = update.effective_message, update.effective_user
    state = _state(context)
    # "thanks!" after an answer is small talk, not a follow-up: it gets no context, it is not a
    # question a later follow-up could lean on, and it counts against its own limit only.
    chat = small_talk(question) is not None
    if message is None or user is None or not await _may_reply(update, context,
                                                               state.chatter if chat else None):
        return
    try:
        question = check_question(question)
    except BadQuestion:
        await message.reply_text(TOO_LONG.format(length=len(question.strip()), limit=MAX_QUESTION_CHARS)
                                 if question.strip() else ASK_USAGE)
        return
    previous, is_reply = _previous_turn(state.memory, message, context.bot.id)
    asked = state.clock()
    query = question if chat else contextualize(question, previous, asked, is_reply)
    typing = asyncio.create_task(_typing(context, message))
    started = time.perf_counter()
    try:
        async with state.searching:
            answered = await asyncio.to_thread(reply_for, state, question, query, previous, is_reply)
    finally:
        await typing
    # Lengths and a flag only: the question and the context it borrowed stay out of the log.
    logger.info("Question from user %s in chat %s: %d characters%s, answered in %.0f ms", user.id,
                message.chat_id, len(question), " (a follow-up)" if answered.query != question else "",
                (time.perf_counter() - started) * 1000)
    sent = [await message.reply_text(text, do_quote=n == 0)  # the first part quotes the question
            for n, text in enumerate(answered.messages)]
    if not chat:
        state.memory.remember(message.chat_id,
                              Turn(question, answered.query, answered.doc_ids, asked, answered.said),
                              [m.message_id for m in sent])


def _previous_turn(memory: Memory, message: Message, bot_id: int) -> tuple[Turn | None, bool]:
    """The turn a message may follow up, and whether it does so by replying to the bot's answer
    (a reply to a bot message the memory no longer knows is an ordinary message)."""
    replied = message.reply_to_message
    if replied is not None and replied.from_user is not None and replied.from_user.id == bot_id:
        answered = memory.answered_by(message.chat_id, replied.message_id)
        if answered is not None:
            return answered, True
    return memory.last(message.chat_id), False


@dataclass(frozen=True)
class Answered:
    """A reply as the chat goes on with it: its HTML messages, the articles it cites (best
    first), the query it was answered with, and the sentence it led with ("" when none)."""

    messages: list[str]
    doc_ids: tuple[str, ...]
    query: str
    said: str = ""


def reply_for(state: BotState, question: str, query: str | None = None,
              previous: Turn | None = None, replied: bool = False) -> Answered:
    """The reply to a checked question: respond (with the conversation's `query` when it
    borrowed the previous question's words, kept only on evidence: answer.stands_alone, which
    weighs a reply to the answer (`replied`) as a stronger sign; the typed words choose the
    sentence, never the one the `previous` turn led with), then format.
    Blocking (it encodes the question): handlers run it with asyncio.to_thread."""
    started = time.perf_counter()
    query = query or question
    try:
        # The words said "follow-up": respond asks the articles whether they agree.
        reply = respond(state.retriever, query, state.options, typed=question,
                        previous=previous.doc_ids if previous is not None else (), replied=replied,
                        said=previous.said_to(question) if previous is not None else "")
        query = reply.question
    except IndexNotFound:
        return Answered([NO_INDEX], (), query)
    except QabotError as err:  # an index replaced badly, a model gone: the operator's problem
        logger.error("Search failed: %s", err)
        return Answered([UNAVAILABLE], (), query)
    logger.debug("%d results over the floor, answered in %.0f ms", len(reply.results),
                 (time.perf_counter() - started) * 1000)
    return Answered(fmt.telegram_reply(reply), tuple(p.doc_id for p in reply.results), query, reply.said)


async def _typing(context: ContextTypes.DEFAULT_TYPE, message: Message) -> None:
    """Show "typing…" while searching; a failure here must not cost the answer."""
    try:
        await context.bot.send_chat_action(message.chat_id, ChatAction.TYPING,
                                           message_thread_id=message.message_thread_id)
    except TelegramError as err:
        logger.debug("Chat action failed: %s", err)


def _allowed(settings: Settings, update: Update) -> bool:
    """Whether the allowlists admit this update: a listed user anywhere, anyone in a listed chat.
    Both lists empty: everyone."""
    users, chats = settings.bot.allowed_user_ids, settings.bot.allowed_chat_ids
    if not users and not chats:
        return True
    user, chat = update.effective_user, update.effective_chat
    return (user is not None and user.id in users) or (chat is not None and chat.id in chats)


async def _admitted(update: Update, context: ContextTypes.DEFAULT_TYPE) -> bool:
    """True when the allowlists admit the update; else False and a polite refusal (refusals count
    against the sender's rate limit, so a flood of them is not answered message for message)."""
    state = _state(context)
    if _allowed(state.settings, update):
        return True
    message, user = update.effective_message, update.effective_user
    logger.info("Refused user %s in chat %s (not in the allowlists)", user.id if user else None,
                message.chat_id if message else None)
    if message is not None and user is not None and state.limiter.check(user.id) == RateLimit.OK:
        await message.reply_text(REFUSED)
    return False


async def _may_reply(update: Update, context: ContextTypes.DEFAULT_TYPE,
                     limiter: RateLimit | None = None) -> bool:
    """True when the allowlists admit the update and its sender is within the rate limit (the
    questions' unless another `limiter` is given); else False, after a refusal or a "slow down"
    where one is due. Every reply counts, not only answers: /help or /sources sent in a flood would
    otherwise get a reply each."""
    message, user = update.effective_message, update.effective_user
    if message is None or user is None or not await _admitted(update, context):
        return False
    limiter = limiter or _state(context).limiter
    verdict = limiter.check(user.id)
    if verdict == RateLimit.WARN:
        seconds = max(1, round(limiter.wait(user.id)))
        await message.reply_text(SLOW_DOWN.format(limit=limiter.limit, seconds=seconds))
    return verdict == RateLimit.OK


def _meant_for_bot(message: Message, bot_id: int, username: str) -> bool:
    """A group message @-mentioning the bot or replying to one of its messages."""
    replied = message.reply_to_message
    if replied is not None and replied.from_user is not None and replied.from_user.id == bot_id:
        return True
    kinds: list[str | None] = [MessageEntity.MENTION, MessageEntity.TEXT_MENTION]
    found = (message.parse_entities(kinds) if message.text is not None
             else message.parse_caption_entities(kinds))
    for entity, text in found.items():
        if entity.type == MessageEntity.MENTION and text.lower() == f"@{username}".lower():
            return True
        if entity.type == MessageEntity.TEXT_MENTION and entity.user and entity.user.id == bot_id:
            return True
    return False


def _strip_mention(text: str, username: str) -> str:
    """The question without the bot's @username."""
    return re.sub(rf"@{re.escape(username)}\b", " ", text, flags=re.IGNORECASE).strip()


# ---------------------------------------------------------------- running


def serve(app: Application, stop_signals: Sequence[int] | None = (signal.SIGINT, signal.SIGTERM)) -> None:
    """Long-poll for the updates the handlers take until a stop signal (`transport.poll`)."""
    state: BotState = app.bot_data["qabot"]
    poll(app, state.polling, ALLOWED_UPDATES, stop_signals)


def run_bot(settings: Settings, env: Mapping[str, str] | None = None, *,
            retriever: Retriever | None = None, verbose: bool = False, watch: bool = False) -> None:
    """`qabot bot`: poll Telegram and answer until SIGINT/SIGTERM. QabotError on a missing or
    rejected token, or a Bot API that can't be reached."""
    env = os.environ if env is None else env
    token, base_url = token_from_env(env), api_url_from_env(env)
    setup_logging(token, verbose)
    try:
        asyncio.run(check_token(token, base_url))  # a bad token: say so before a long build
        if retriever is None and not watch:  # with --watch, the watcher builds it
            retriever = open_index(settings, log=logger.info, progress=Reporter(LogLines(logger.info)))
        app = build_application(settings, token, base_url, retriever)
        watcher = None
        if watch:
            from .watch import PROGRESS_AFTER_S, Watcher

            log = logging.getLogger("qabot.watch").info
            # The first build of a big folder takes minutes: a log line every few seconds says how far.
            watcher = Watcher(settings, log=log, timestamps=False,
                              progress=Reporter(LogLines(log), after=PROGRESS_AFTER_S))
            watcher.start()
        try:
            serve(app)
        finally:
            if watcher is not None:
                watcher.stop(watcher.grace)
    except InvalidToken:
        raise ConfigError("Telegram rejected the bot token (401 Unauthorized): check "
                          "QABOT_TELEGRAM_TOKEN against the one @BotFather gave you") from None
    except TelegramError as err:
        raise QabotError(Redact(token).redact(
            f"could not talk to the Telegram Bot API at {base_url} ({type(err).__name__}: {err}); "
            f"check the network and {API_URL_VARIABLE}")) from None
    logger.info("Stopped.")
