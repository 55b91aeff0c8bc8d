"""The bot's transport, apart from a running bot: the token and server from the environment, the
per-user question limit, log redaction. The transport at work (sending limits, retries, a token
revoked mid-run, polling and shutdown) is tested end to end in tests/test_bot.py."""

from __future__ import annotations

import logging

import pytest
from telegram.error import InvalidToken

from qabot import transport
from qabot.errors import ConfigError

TOKEN = "123456:TEST-secret-token"


def test_token_and_url_come_from_the_environment() -> None:
    with pytest.raises(ConfigError, match="QABOT_TELEGRAM_TOKEN"):
        transport.token_from_env({"QABOT_TELEGRAM_TOKEN": "  "})
    assert transport.token_from_env({"TELEGRAM_BOT_TOKEN": "1:a\n"}) == "1:a"
    assert transport.token_from_env({"QABOT_TELEGRAM_TOKEN": "1:q", "TELEGRAM_BOT_TOKEN": "1:t"}) == "1:q"
    assert transport.api_url_from_env({}) == "https://api.telegram.org/bot"
    assert transport.api_url_from_env({"QABOT_TELEGRAM_API_URL": "http://127.0.0.1:8081/bot"}) == (
        "http://127.0.0.1:8081/bot")
    with pytest.raises(ConfigError):
        transport.api_url_from_env({"QABOT_TELEGRAM_API_URL": "127.0.0.1:8081"})


def test_logging_redacts_the_token_everywhere(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        transport.setup_logging(TOKEN, verbose=True)
        assert logging.getLogger("httpx").level == logging.WARNING
        log = logging.getLogger("qabot.test")
        log.debug("calling https://api.telegram.org/bot%s/getMe", TOKEN)
        try:
            raise ValueError(f"bad {TOKEN}")
        except ValueError:
            log.exception("failed")
        try:
            raise InvalidToken(f"The token `{TOKEN}` was rejected by the server.")
        except InvalidToken:
            log.exception("PTB's own report")  # dropped: bot.run_bot prints one line instead
        err = capsys.readouterr().err
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    assert "bot<token>/getMe" in err and "ValueError: bad <token>" in err
    assert "TEST-secret" not in err and "PTB's own report" not in err


def test_rate_limit_window_slides() -> None:
    now = [0.0]
    limit = transport.RateLimit(2, 60.0, clock=lambda: now[0])
    assert [limit.check(1) for _ in range(4)] == ["ok", "ok", "warn", "drop"]
    assert limit.check(2) == "ok"
    now[0] = 30.0
    assert limit.wait(1) == pytest.approx(30.0) and limit.check(1) == "drop"
    now[0] = 60.5  # the first two questions left the window
    assert [limit.check(1) for _ in range(3)] == ["ok", "ok", "warn"]
