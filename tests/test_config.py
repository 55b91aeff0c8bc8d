"""Settings precedence: defaults < config file < environment < flags; bad values named."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qabot.config import _BOUNDS, Settings, load_settings
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
        ("[search]\nk = 'many'\n", "search.k must be a whole number, not 'many'"),
        ("[search]\nkk = 3\n", "unknown setting [search] kk"),
        ("[chunking]\nmax_tokens = 2000\n", "between 16 and 512"),
        ("not toml = = =", "not valid TOML"),
        ("[paths]\nmax_file_mb = 0\n", "paths.max_file_mb must be between 0.001 and"),
        ("[model]\nprecision = 'int4'\n", 'model.precision must be one of "fp32", "int8"'),
        # A string is never a list: "12345" must not become users 1, 2, 3, 4 and 5.
        ('[bot]\nallowed_user_ids = "12345"\n', "bot.allowed_user_ids must be a list of whole numbers"),
        ("[bot]\nallowed_user_ids = [0]\n", "bot.allowed_user_ids holds 0, which is no Telegram user"),
        ("[bot]\nallowed_chat_ids = [true]\n", "bot.allowed_chat_ids must be a list"),
        # A string is never a bool: "false" is a true value to Python.
        ('[bm25]\ntitles = "false"\n', "bm25.titles must be true or false"),
        ("[bm25]\ntitles = 0\n", "bm25.titles must be true or false"),
        ("[search]\nk = true\n", "search.k must be a whole number"),
        ("[search]\nk = 2.5\n", "search.k must be a whole number"),
        ("[search]\nmode = 3\n", "search.mode must be a string"),
        ("[paths]\nseeds = 3\n", "paths.seeds must be a folder path"),
        ("[paths]\nmax_file_mb = inf\n", "paths.max_file_mb must be a finite number"),
        ("[paths]\nmax_file_mb = nan\n", "paths.max_file_mb must be a finite number"),
        ("[paths]\nmax_file_mb = 1e-300\n", "paths.max_file_mb must be between 0.001"),
        ("[bm25]\nk1 = inf\n", "bm25.k1 must be a finite number"),
        ("[bm25]\nk1 = 1e9\n", "bm25.k1 must be between 0 and 10"),
        ("[search]\nrecency_half_life = nan\n", "search.recency_half_life must be a finite number"),
        ("[search]\nrecency_half_life = 0\n", "search.recency_half_life must be between"),
        ("[search]\nduplicate_containment = -inf\n", "search.duplicate_containment must be a finite"),
        ("[search]\nrecency_margin = nan\n", "search.recency_margin must be a finite number"),
        ("[search]\nrecency_margin = 5\n", "search.recency_margin must be between 0 and 1"),
        ("[vectors]\ncodec = 'zip'\n", "vectors.codec must be one of"),
        ("[model]\nname = ' '\n", "model.name is empty"),
        ("[nonsense]\n", "unknown section [nonsense]"),
        ("[source]\nx = 1\n", "unknown section [source]"),
        ("x = " + "[" * 100_000 + "]" * 100_000 + "\n", "nests arrays or tables too deeply"),
    ],
)
def test_bad_config_is_named(tmp_path: Path, text: str, message: str) -> None:
    cfg = tmp_path / "q.toml"
    cfg.write_text(text)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_settings(cfg, env={})


# ------------------------------------------------ every setting: its type and its range, by key

_SECTIONS = [f.name for f in fields(Settings) if f.name != "source"]
_KEYS = [(s, f.name, f.default) for s in _SECTIONS for f in fields(getattr(Settings(), s))]
_TOML_VALUES = st.one_of(  # every TOML type, with the awkward values of each
    st.booleans(), st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8),
    st.lists(st.one_of(st.integers(-5, 5), st.text(max_size=2), st.booleans()), max_size=3))


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if value != value else ("inf" if value == float("inf") else
                                               "-inf" if value == float("-inf") else repr(value))
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")  # TOML escapes DEL too
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return str(value)


def _accepted(default: object, value: object) -> bool:
    """Whether `value` has the type of `default` without conversion (ints count as floats)."""
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(default, bool) and isinstance(value, bool)
    if isinstance(default, tuple):
        return isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool)
                                               for v in value)
    if isinstance(default, float):
        return isinstance(value, int | float) and value == value and abs(value) != float("inf")
    if isinstance(default, int):
        return isinstance(value, int)
    return isinstance(value, str)


@settings(max_examples=300, deadline=None)
@given(key=st.sampled_from(_KEYS), value=_TOML_VALUES)
def test_every_setting_is_checked_for_type_and_range_and_named(
        tmp_path_factory: pytest.TempPathFactory, key: tuple[str, str, object], value: object) -> None:
    """Any TOML value for any key either loads as exactly that value, or is refused with the key
    named: nothing is coerced (no str -> list or bool), nothing out of range or non-finite passes."""
    section, name, default = key
    cfg = tmp_path_factory.mktemp("cfg") / "q.toml"
    cfg.write_text(f"[{section}]\n{name} = {_toml(value)}\n")
    try:
        loaded = getattr(getattr(load_settings(cfg, env={}), section), name)
    except ConfigError as err:
        assert f"{section}.{name}" in str(err)
        return
    assert _accepted(default, value), f"{section}.{name} = {value!r} was coerced to {loaded!r}"
    if isinstance(default, tuple):
        assert loaded == tuple(value)  # type: ignore[arg-type]
    elif not isinstance(default, Path):
        assert loaded == value and type(loaded) is type(default)
    bounds = _BOUNDS.get(f"{section}.{name}")
    if bounds is not None:
        assert bounds[0] <= loaded <= bounds[1]


def test_every_number_setting_has_bounds() -> None:
    """A new number setting can't slip past the range check by being forgotten in _BOUNDS."""
    numbers = {f"{s}.{n}" for s, n, d in _KEYS if isinstance(d, int | float) and not isinstance(d, bool)}
    assert numbers == set(_BOUNDS)
