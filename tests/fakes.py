"""A deterministic fake embedder for logic tests: words hashed into a small vector space."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from qabot.config import ChunkSettings, ModelSettings, PathSettings, Settings
from qabot.indexer import Report, run_index


class FakeEmbedder:
    """Bag of hashed words; counts every text it embeds, so tests can assert what was re-embedded."""

    def __init__(self, dim: int = 64, name: str = "fake-embedder") -> None:
        self.name = name
        self.dim = dim
        self.calls = 0
        self.embedded: list[str] = []

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Unit vectors: texts sharing words point the same way."""
        self.calls += 1
        self.embedded.extend(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "big")
                out[row, h % self.dim] += 1.0
            norm = np.linalg.norm(out[row])
            out[row] = out[row] / norm if norm else 1.0 / np.sqrt(self.dim)
        return out

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """One token per word or punctuation mark, roughly like WordPiece."""
        return [len(re.findall(r"\w+|[^\w\s]", t)) for t in texts]


def fake_corpus(seeds: Path) -> Settings:
    """Three small dated stories in `seeds`, and settings that index them with the fake embedder
    (small passages, so each story makes several)."""
    seeds.mkdir()
    for i, topic in enumerate(["volcano lava Iceland", "football cup final", "bank interest rate"]):
        (seeds / f"{i}.txt").write_text(
            f" date 2024-01-0{i + 1} Story about {topic}. " + f"More on {topic} here. " * 5
        )
    return fake_settings(seeds)


def fake_settings(seeds: Path) -> Settings:
    """Settings that index `seeds` into a folder beside it with the fake embedder, in small
    passages."""
    return Settings(paths=PathSettings(seeds=seeds, index=seeds.parent / "idx"),
                    model=ModelSettings(name="fake-embedder"),
                    chunking=ChunkSettings(max_tokens=24, overlap_tokens=4))


def index(settings: Settings, fake: FakeEmbedder, **kw: Any) -> Report:
    """run_index with the fake embedder, quietly."""
    return run_index(settings, log=lambda msg: None, embedder=fake, **kw)
