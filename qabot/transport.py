"""Telegram transport: how `qabot bot` reaches the Bot API, beneath the handlers in bot.py.

The token (from the environment only) and the server's URL; the per-user question limit;
Telegram's sending limits with retries; getUpdates' connection, which notices a revoked token;
long polling with a clean shutdown; log lines with the token redacted. Nothing here knows what a
message means: bot.py imports this module, never the other way round.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections import deque
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any

from telegram import Bot
from telegram.error import BadRequest, InvalidToken, NetworkError
from telegram.ext import AIORateLimiter, Application, ApplicationBuilder
from telegram.request import HTTPXRequest

from .errors import ConfigError

logger = logging.getLogger(__name__)

TOKEN_VARIABLES = ("QABOT_TELEGRAM_TOKEN", "TELEGRAM_BOT_TOKEN")
API_URL_VARIABLE = "QABOT_TELEGRAM_API_URL"
DEFAULT_API_URL = "https://api.telegram.org/bot"
POLL_TIMEOUT = 30  # seconds a getUpdates call waits for news: Telegram answers at once when any


# ---------------------------------------------------------------- settings from the environment


def token_from_env(env: Mapping[str, str]) -> str:
    """The bot token from QABOT_TELEGRAM_TOKEN (or TELEGRAM_BOT_TOKEN); ConfigError when unset."""
    for name in TOKEN_VARIABLES:
        token = env.get(name, "").strip()
        if token:
            return token
    raise ConfigError(
        "no Telegram bot token: set QABOT_TELEGRAM_TOKEN to the token @BotFather gave you "
        "(environment only, never a file in the repository; see docs/telegram.md)"
    )


def api_url_from_env(env: Mapping[str, str]) -> str:
    """The Bot API base URL the token is appended to (QABOT_TELEGRAM_API_URL, for test servers)."""
    url = env.get(API_URL_VARIABLE, "").strip() or DEFAULT_API_URL
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"{API_URL_VARIABLE} must be an http(s) URL such as {DEFAULT_API_URL}")
    return url


# ---------------------------------------------------------------- per-user rate limit


class RateLimit:
    """At most `limit` questions per user in any `period` seconds (a sliding window).

    `check()` answers OK, WARN (over the limit: say "slow down" once) or DROP (over the limit
    and already told: stay silent, so a flood gets one reply rather than one per message).
    """

    OK, WARN, DROP = "ok", "warn", "drop"

    def __init__(self, limit: int, period: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit, self.period, self._clock = limit, period, clock
        self._times: dict[int, deque[float]] = {}
        self._warned: set[int] = set()

    def check(self, user: int) -> str:
        """Count one question of `user` if the window has room; say what to do with it."""
        now = self._clock()
        if len(self._times) > 10_000:  # forget users idle for a whole window
            self._times = {u: t for u, t in self._times.items() if t and t[-1] > now - self.period}
        times = self._times.setdefault(user, deque())
        while times and times[0] <= now - self.period:
            times.popleft()
        if len(times) < self.limit:
            times.append(now)
            self._warned.discard(user)
            return self.OK
        if user in self._warned:
            return self.DROP
        self._warned.add(user)
        return self.WARN

    def wait(self, user: int) -> float:
        """Seconds until `user` may ask again."""
        times = self._times.get(user)
        return max(0.0, times[0] + self.period - self._clock()) if times else 0.0


# ---------------------------------------------------------------- Telegram's sending limits


class SendLimiter(AIORateLimiter):
    """PTB's AIORateLimiter (Telegram's flood limits; a 429's retry_after waited out, then the
    request retried) that also retries a request that failed on the network (connection
    dropped, 5xx, timeout) a few times with a growing pause, instead of losing the answer.

    A timed-out sendMessage may have arrived: retrying risks a duplicate, which beats a lost
    answer. Chat actions skip all of it: they are a courtesy, not a message.
    """

    def __init__(self, max_retries: int = 3, network_retries: int = 3, backoff: float = 0.5) -> None:
        super().__init__(max_retries=max_retries)
        self.network_retries, self.backoff = network_retries, backoff

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, Any]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> Any:
        """Send through the flood limits; retry network failures."""
        if endpoint == "sendChatAction":
            return await callback(*args, **kwargs)
        if not endpoint.startswith(("send", "edit", "answer", "set")):
            # getMe, deleteWebhook…: PTB's start-up has its own retries
            return await super().process_request(callback, args, kwargs, endpoint, data, rate_limit_args)
        for attempt in range(self.network_retries + 1):
            try:
                return await super().process_request(callback, args, kwargs, endpoint, data,
                                                     rate_limit_args)
            except BadRequest:
                raise  # a NetworkError subclass, but sending it again won't help
            except NetworkError as err:
                if attempt == self.network_retries:
                    raise
                pause = self.backoff * 2**attempt
                logger.warning("Telegram %s failed (%s); retrying in %.1f s", endpoint, err, pause)
                await asyncio.sleep(pause)
        raise AssertionError("unreachable")


# ---------------------------------------------------------------- a token revoked mid-run


class PollRequest(HTTPXRequest):
    """The connection getUpdates uses (one, as PTB's default) that notices a 401 Unauthorized.

    When the token is revoked mid-run, PTB's polling task ends with InvalidToken and nothing else
    notices: the bot would stay up, deaf and silent, and systemd would never restart it. So a 401
    here calls `on_rejected` (`bot.build_application`: stop polling) and `poll()` turns it into one
    error and a non-zero exit.
    """

    def __init__(self) -> None:
        super().__init__(connection_pool_size=1)
        self.rejected = False
        self.on_rejected: Callable[[], None] = lambda: None

    async def do_request(self, *args: Any, **kwargs: Any) -> tuple[int, bytes]:
        """Send as HTTPXRequest does; note a 401."""
        status, payload = await super().do_request(*args, **kwargs)
        if status == 401 and not self.rejected:
            self.rejected = True
            self.on_rejected()
        return status, payload


def builder(token: str, base_url: str, polling: PollRequest) -> ApplicationBuilder:
    """PTB's ApplicationBuilder for this token and server, with the connections set up here:
    sending through SendLimiter, getUpdates through `polling`, updates handled concurrently."""
    return (
        ApplicationBuilder()
        .token(token)
        .base_url(base_url)
        .rate_limiter(SendLimiter())
        .get_updates_request(polling)
        .concurrent_updates(True)  # one slow question must not hold up everyone else's
    )


# ---------------------------------------------------------------- running


def poll(
    app: Application, polling: PollRequest, allowed_updates: Sequence[str],
    stop_signals: Sequence[int] | None = (signal.SIGINT, signal.SIGTERM),
) -> None:
    """Long-poll Telegram until a stop signal (or `app.stop_running()`), then shut down cleanly:
    questions being answered are finished, and the updates fetched are confirmed to Telegram.
    `polling` is the getUpdates connection `app` was built with (`builder`). ConfigError when
    Telegram stops accepting the token mid-run (revoked or replaced)."""
    try:
        app.run_polling(poll_interval=0.0, timeout=POLL_TIMEOUT, allowed_updates=allowed_updates,
                        bootstrap_retries=3, stop_signals=stop_signals, close_loop=False)
    except InvalidToken:
        if not polling.rejected:
            raise
        # PTB re-raises the polling task's InvalidToken from Updater.stop() and skips the rest
        # of its shutdown: finish it here, so answers in progress end and nothing is left open.
        loop = asyncio.get_event_loop()
        if app.running:
            loop.run_until_complete(app.stop())
        loop.run_until_complete(app.shutdown())
    finally:
        asyncio.get_event_loop().close()
    if polling.rejected:
        raise ConfigError("Telegram stopped accepting the bot token (401 Unauthorized): it was "
                          "revoked or replaced; set QABOT_TELEGRAM_TOKEN to the one @BotFather "
                          "gives now and start the bot again")


class Redact(logging.Filter):
    """Keeps the token out of every log line (PTB's Bot repr and InvalidToken message carry it)
    and drops PTB's own report of a rejected token, which `bot.run_bot` turns into one clear line."""

    def __init__(self, token: str) -> None:
        super().__init__()
        # The whole token first, then its secret half on its own (as in a truncated URL).
        self.secrets = [s for s in (token, token.partition(":")[2]) if len(s) >= 6]

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], InvalidToken):
            return False
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        redacted = self.redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        return True

    def redact(self, text: str) -> str:
        """`text` with every secret replaced."""
        for secret in self.secrets:
            text = text.replace(secret, "<token>")
        return text


def setup_logging(token: str, verbose: bool = False) -> None:
    """Log lines on stderr, INFO (DEBUG with --verbose), the token redacted from all of them;
    what users write and who they are never logged, at any level."""
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        level=logging.DEBUG if verbose else logging.INFO, force=True)
    logging.captureWarnings(True)
    # httpx logs every request URL at INFO, and a Bot API URL contains the token.
    for noisy in ("httpx", "httpcore", "faiss"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # python-telegram-bot logs every update it fetches and every request's parameters at DEBUG:
    # question text, names and usernames. docs/telegram.md promises questions are never logged,
    # so --verbose is verbose about qabot only.
    logging.getLogger("telegram").setLevel(logging.INFO)
    for handler in logging.getLogger().handlers:
        handler.addFilter(Redact(token))


async def check_token(token: str, base_url: str, attempts: int = 4) -> None:
    """Ask the Bot API who the bot is (getMe) before anything else starts: InvalidToken on a 401;
    a network failure is retried after 1, 2, 4 s, then raised."""
    for attempt in range(attempts):
        try:
            async with Bot(token, base_url=base_url):
                return
        except NetworkError as err:
            if isinstance(err, BadRequest) or attempt == attempts - 1:
                raise
            logger.warning("Cannot reach the Telegram Bot API (%s); retrying in %d s", err, 2**attempt)
            await asyncio.sleep(2**attempt)


