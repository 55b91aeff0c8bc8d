"""Settings precedence: defaults < config file < environment < flags; bad values named."""

from __future__ import annotations

from pathlib import Path

import pytest

from qabot.config import Settings, load_settings
from qabot.errors import ConfigError


def test_precedence(tmp_path: Path) -> None:
    cfg = tmp_path / "q.toml"
    cfg.write_text('[paths]\nseeds = "from-file"\nindex = "idx-file"\n[search]\nk = 7\n')
    s = load_settings(cfg, env={"QABOT_INDEX": "idx-env"})
    assert s.seeds == Path("from-file") and s.index == Path("idx-env") and s.search.k == 7
    s = load_settings(cfg, env={"QABOT_INDEX": "idx-env"}, index=Path("idx-flag"), k=None)
    assert s.index == Path("idx-flag") and s.search.k == 7


def test_default_config_file_is_found_in_the_working_directory(tmp_path: Path) -> None:
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "qabot.toml").write_text("[bot]\nallowed_user_ids = [1, 2]\n")
    assert load_settings(env={}).bot.allowed_user_ids == (1, 2)


def test_shipped_config_documents_exactly_the_defaults() -> None:
    shipped = Path(__file__).resolve().parents[1] / "config" / "qabot.toml"
    assert load_settings(shipped, env={}) == Settings()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[search]\nk = 'many'\n", "k has a bad value"),
        ("[search]\nkk = 3\n", "unknown setting [search] kk"),
        ("[chunking]\nmax_tokens = 2000\n", "between 16 and 512"),
        ("not toml = = =", "not valid TOML"),
        ("[paths]\nmax_file_mb = 0\n", "max_file_mb must be more than 0"),
        ("[model]\nprecision = 'int4'\n", "precision must be one of fp32, int8"),
    ],
)
def test_bad_config_is_named(tmp_path: Path, text: str, message: str) -> None:
    cfg = tmp_path / "q.toml"
    cfg.write_text(text)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_settings(cfg, env={})
