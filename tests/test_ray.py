"""`qabot index --ray`: the same passages, vectors and manifest as the single-process path."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from qabot import catalog, ray_embed, store
from qabot.cli import cli
from qabot.config import ChunkSettings, ModelSettings, PathSettings, Settings
from qabot.embed import OnnxEmbedder
from qabot.errors import RayUnavailable
from qabot.indexer import load_embedder, run_index
from qabot.manifest import Manifest
from qabot.ray_embed import RayEmbedder
from tests.conftest import link_encoder, make_seeds
from tests.fakes import FakeEmbedder

# Ray Data's own DataContext warns about its own deprecated fields when it is created.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.data.context")


def quiet(msg: str) -> None:
    pass


@pytest.fixture(scope="module")
def ray_session() -> Iterator[Any]:
    """One local Ray for the module (starting one costs seconds); RayEmbedder joins it."""
    ray = pytest.importorskip("ray")
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             logging_level=logging.ERROR, _node_ip_address="127.0.0.1")
    yield ray
    ray.shutdown()


def embedded(index_dir: Path) -> tuple[list[str], np.ndarray]:
    """Every passage's text and vector in the committed index, by id."""
    snap = store.load_snapshot(index_dir)
    try:
        ids = np.array(sorted(snap.passages), dtype=np.int64)
        return [snap.passages[i].text for i in ids.tolist()], snap.vectors.vectors_of(ids)
    finally:
        snap.catalog.close()


def committed(index_dir: Path) -> tuple[Manifest, list[catalog.PassageRecord]]:
    """The manifest, minus what differs between any two runs, and every passage by id."""
    manifest = store.load_manifest(index_dir)
    assert manifest is not None
    manifest = replace(manifest, committed_at=None)
    snap = store.load_snapshot(index_dir)
    try:
        return manifest, [snap.passages[i] for i in sorted(snap.passages)]
    finally:
        snap.catalog.close()


def test_ray_index_matches_the_single_process_index(
    ray_session: Any, tmp_path: Path, encoder_cache: Path
) -> None:
    seeds = make_seeds(tmp_path / "seeds")  # the shipped article + 4 fixtures
    messages: list[str] = []
    for name in ("single", "ray"):
        # Short passages in small batches: a few dozen rows in several blocks over the two
        # workers, so blocks can come back out of order.
        settings = Settings(paths=PathSettings(seeds=seeds, index=tmp_path / name),
                            chunking=ChunkSettings(max_tokens=32, overlap_tokens=8),
                            model=ModelSettings(batch_size=1))
        link_encoder(encoder_cache, settings.index)
        if name == "single":  # the settings' model, loaded by run_index as `qabot index` does
            report = run_index(settings, log=quiet)
        else:  # as `qabot index --ray` does (cli.py): the loader runs inside run_index
            ray = RayEmbedder(partial(load_embedder, settings, quiet), log=messages.append)
            report = run_index(settings, log=quiet, embedder=ray)
        assert report.committed and report.articles == 5

    single_texts, single_vecs = embedded(tmp_path / "single")
    ray_texts, ray_vecs = embedded(tmp_path / "ray")
    assert ray_texts == single_texts and len(set(ray_texts)) >= 20
    assert ray_vecs.dtype == np.float32 and ray_vecs.shape == single_vecs.shape
    cosines = (ray_vecs * single_vecs).sum(axis=1) / np.linalg.norm(ray_vecs, axis=1)
    assert cosines.min() >= 0.9999
    assert messages == [f"Embedding on Ray: {len(ray_texts)} passages over 2 workers (a local Ray)…"]

    single_manifest, single_passages = committed(tmp_path / "single")
    ray_manifest, ray_passages = committed(tmp_path / "ray")
    assert ray_manifest == single_manifest
    assert ray_passages == single_passages  # ids, doc ids, offsets and texts


def test_nothing_to_embed_does_not_start_ray(
    onnx_embedder: OnnxEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("ray")

    def no_session(address: str | None) -> None:
        raise AssertionError("Ray was started for nothing")

    monkeypatch.setattr(ray_embed, "_session", no_session)
    ray = RayEmbedder(lambda: onnx_embedder, log=quiet)
    assert ray.encode_all([], 32, None).shape == (0, onnx_embedder.dim)
    assert ray.encode([]).shape == (0, onnx_embedder.dim)


def test_ray_client_addresses_are_refused_up_front() -> None:
    pytest.importorskip("ray")
    with pytest.raises(RayUnavailable, match=r"does not work over Ray Client .*--ray auto"):
        RayEmbedder(FakeEmbedder, "ray://head:10001")


def test_without_ray_the_flag_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    with pytest.raises(RayUnavailable, match=r'pip install "qabot\[ray\]"'):
        RayEmbedder(FakeEmbedder)
    result = CliRunner().invoke(cli, ["index", "--ray"], obj={})
    assert result.exit_code == 1
    assert 'Error: --ray needs Ray, which is not installed: pip install "qabot[ray]"' in result.output


def test_index_help_shows_ray_with_an_example() -> None:
    result = CliRunner().invoke(cli, ["index", "--help"], obj={})
    assert result.exit_code == 0
    assert "--ray [ADDRESS]" in result.output and "qabot index --ray auto" in result.output
    both = CliRunner().invoke(cli, ["index", "--ray", "--watch"], obj={})
    assert both.exit_code == 2 and "can't be combined" in both.output
