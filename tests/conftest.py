"""Shared fixtures: every path under tmp_path, no network, the real model loaded once a session."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from qabot.config import PACKAGED_MODEL, PathSettings, Settings
from qabot.embed import OnnxEmbedder, TorchEmbedder
from qabot.encoder import encoder_folder
from tests.netguard import sitecustomize as netguard

ROOT = Path(__file__).resolve().parents[1]
NETGUARD = ROOT / "tests" / "netguard"
FIXTURE_SEEDS = ROOT / "tests" / "fixtures" / "seeds"
SHIPPED_SEED = ROOT / "seeds" / "000_510ad1cb4fc50a43.txt"
QUESTION = "Which road did Azerbaijan propose to help Armenian residents in Karabakh?"
# The installed console script, as a user runs it.
QABOT = [str(Path(sys.executable).parent / "qabot")]


@pytest.fixture(autouse=True)
def _isolate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point every qabot path at tmp_path, so no test touches the repo's seeds or index."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("QABOT_SEEDS", str(tmp_path / "seeds"))
    monkeypatch.setenv("QABOT_INDEX", str(tmp_path / "embeddings"))
    for name in ("QABOT_CONFIG", "QABOT_MODEL", "QABOT_TELEGRAM_TOKEN", "TELEGRAM_BOT_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any test that opens a socket to anything but loopback, in this process and in every
    Python process a test starts (tests/netguard/sitecustomize.py, first on their PYTHONPATH)."""
    monkeypatch.setattr(socket.socket, "connect", netguard.guard(socket.socket.connect))
    monkeypatch.setattr(socket.socket, "connect_ex", netguard.guard(socket.socket.connect_ex))
    inherited = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(NETGUARD), *([inherited] if inherited else [])]))


@pytest.fixture(scope="session")
def torch_embedder() -> TorchEmbedder:
    """The real model on sentence-transformers, loaded once for the session."""
    return TorchEmbedder(PACKAGED_MODEL)


@pytest.fixture(scope="session")
def encoder_cache(tmp_path_factory: pytest.TempPathFactory, torch_embedder: TorchEmbedder) -> Path:
    """The real ONNX export, done once; tests link it into their index folders."""
    root = tmp_path_factory.mktemp("encoder-cache")
    return root / torch_embedder.export_onnx(root)


@pytest.fixture(scope="session")
def onnx_embedder(encoder_cache: Path) -> OnnxEmbedder:
    """The exported model on onnxruntime, loaded once."""
    return OnnxEmbedder(encoder_cache)


def link_encoder(encoder_cache: Path, index_dir: Path) -> None:
    """Give an index folder the session's ONNX export (hard links), so indexing skips torch."""
    index_dir.mkdir(parents=True, exist_ok=True)
    dest = index_dir / encoder_folder(PACKAGED_MODEL)
    if not dest.exists():
        shutil.copytree(encoder_cache, dest, copy_function=os.link)


def indexed(seeds: Path, encoder_cache: Path) -> Settings:
    """Settings for `seeds` with an index beside it, built with the real model (the session's
    ONNX export linked in, so no torch)."""
    from qabot.indexer import run_index

    settings = Settings(paths=PathSettings(seeds=seeds, index=seeds.parent / "embeddings"))
    link_encoder(encoder_cache, settings.index)
    run_index(settings, log=lambda msg: None)
    return settings


def make_seeds(dest: Path, shipped: bool = True, fixtures: bool = True) -> Path:
    """A seeds folder with the shipped article and/or the fixture articles."""
    dest.mkdir(parents=True, exist_ok=True)
    if shipped:
        shutil.copy(SHIPPED_SEED, dest / SHIPPED_SEED.name)
    if fixtures:
        shutil.copytree(FIXTURE_SEEDS, dest, dirs_exist_ok=True)
    return dest


@pytest.fixture
def real_settings(tmp_path: Path, encoder_cache: Path) -> Settings:
    """Settings for a seeds folder (shipped + fixtures) and an index that has the real encoder."""
    make_seeds(tmp_path / "seeds")
    link_encoder(encoder_cache, tmp_path / "embeddings")
    return Settings(paths=PathSettings(seeds=tmp_path / "seeds", index=tmp_path / "embeddings"))


def run_qabot(*args: str, timeout: float = 120, **kw: object) -> subprocess.CompletedProcess[str]:
    """Run the real CLI in a subprocess (cwd and env come from the isolating fixture)."""
    return subprocess.run([*QABOT, *args], capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ), **kw)  # type: ignore[call-overload]


@pytest.fixture
def chdir_tmp(tmp_path: Path) -> Iterator[Path]:
    """The test's temporary folder (already the working directory)."""
    yield tmp_path
