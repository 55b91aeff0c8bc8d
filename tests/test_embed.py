"""The embedder's ONNX export: what it leaves on disk when it fails, its saved optimised graph,
and the int8 encoder."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from qabot import encoder, store
from qabot.config import Settings
from qabot.embed import OnnxEmbedder, TorchEmbedder
from qabot.encoder import ENCODER_FORMAT, optimized_graph, work_folder
from qabot.errors import IndexIncompatible
from qabot.indexer import plan, run_index
from qabot.reader import Retriever
from qabot.retrieve import search
from tests.conftest import FIXTURE_SEEDS, SHIPPED_SEED
from tests.fakes import FakeEmbedder, fake_corpus, index


def paragraphs() -> list[str]:
    """Real text to encode: the shipped article's and the fixtures' paragraphs."""
    files = [SHIPPED_SEED, *sorted(FIXTURE_SEEDS.glob("*.txt"))]
    return [line for f in files for line in f.read_text(encoding="utf-8").splitlines()
            if len(line) > 40]


def linked_copy(folder: Path, dest: Path) -> Path:
    """A copy of an encoder folder made of hard links (replace a file, never edit one)."""
    shutil.copytree(folder, dest / folder.name, copy_function=os.link)
    return dest / folder.name


@pytest.fixture(scope="module")
def int8_cache(tmp_path_factory: pytest.TempPathFactory, torch_embedder: TorchEmbedder) -> Path:
    """The real model exported and quantized to int8, once for this module (a few seconds)."""
    root = tmp_path_factory.mktemp("encoder-int8")
    return root / torch_embedder.export_onnx(root, "int8")


def test_a_failed_export_leaves_no_partial_folder(
    torch_embedder: TorchEmbedder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    def broken_export(model: Any, args: Any, f: str, **kw: Any) -> None:
        Path(f).write_bytes(b"half an ONNX file")  # as a real export dying midway would
        raise RuntimeError("unsupported operator")

    monkeypatch.setattr(torch.onnx, "export", broken_export)
    index_dir = tmp_path / "idx"
    index_dir.mkdir()
    for _ in range(2):  # every try used to leave its own .tmp-encoder-* behind
        with pytest.raises(RuntimeError, match="unsupported operator"):
            torch_embedder.export_onnx(index_dir)
    assert list(index_dir.iterdir()) == []


# A child that opens an encoder folder whose optimised graph is missing, and hangs where the
# optimisation runs: its work folder is made, it never finishes (the pipe says when it is there).
_HANGS_OPTIMISING = """
import sys, time
from pathlib import Path
from qabot import embed, encoder

def hang(*args, **kw):
    print("optimising", flush=True)
    time.sleep(120)

encoder._session = hang
embed.OnnxEmbedder(Path(sys.argv[1]))
"""


def killed_while_optimising(folder: Path) -> Path:
    """SIGKILL a real process in the middle of optimising `folder`'s graph; its work folder."""
    child = subprocess.Popen([sys.executable, "-c", _HANGS_OPTIMISING, str(folder)],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline() == "optimising\n"
        left = [f for f in folder.iterdir() if f.name.startswith(".tmp-optimized-")]
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert len(left) == 1 and str(child.pid) in left[0].name
    return left[0]


def test_work_folders_of_a_killed_start_are_removed_by_the_next_and_live_ones_kept(
    encoder_cache: Path, onnx_embedder: OnnxEmbedder, tmp_path: Path
) -> None:
    folder = linked_copy(encoder_cache, tmp_path)
    shutil.rmtree(optimized_graph(folder).parent)  # an export from before the graph was saved
    killed = killed_while_optimising(folder)
    assert killed.is_dir()  # SIGKILL ran no cleanup
    ours = work_folder(folder, "optimized-ort-0")  # this thread's: a writer at work
    ours.mkdir()
    # This pid, a thread it no longer has: a container restarted with the same small pid.
    restarted = folder / f".tmp-optimized-ort-0-{os.getpid()}-1"
    restarted.mkdir()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        alive = folder / f".tmp-optimized-ort-0-{sleeper.pid}-{threading.get_ident()}"
        alive.mkdir()  # another process's, still running
        other = folder / ".tmp-not-one-of-ours"
        other.mkdir()
        vecs = OnnxEmbedder(folder).encode(paragraphs()[:2])
    finally:
        sleeper.kill()
        sleeper.wait()
    np.testing.assert_allclose(vecs, onnx_embedder.encode(paragraphs()[:2]), atol=1e-5)
    assert not killed.exists() and not restarted.exists()
    assert ours.is_dir() and alive.is_dir() and other.is_dir()
    assert optimized_graph(folder).is_file()  # and the start that cleaned up saved the graph


def test_an_export_killed_mid_way_is_cleaned_up_by_the_next_export(
    torch_embedder: TorchEmbedder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The index folder's own work folder (the export before its rename): a killed export that
    no commit follows (the model export restored on an up-to-date index) used to stay forever."""
    index_dir = tmp_path / "idx"
    index_dir.mkdir()
    child = subprocess.Popen([sys.executable, "-c", "import sys, time; from pathlib import Path; "
                              "from qabot.encoder import work_folder; "
                              "work_folder(Path(sys.argv[1]), 'encoder-x').mkdir(); "
                              "print('exporting', flush=True); time.sleep(120)", str(index_dir)],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline() == "exporting\n"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    killed = [f for f in index_dir.iterdir() if str(child.pid) in f.name]
    assert len(killed) == 1
    exported = torch_embedder.export_onnx(index_dir)
    assert sorted(f.name for f in index_dir.iterdir()) == [exported]


@pytest.mark.parametrize("version", [2, None], ids=["newer", "missing"])
def test_an_encoder_of_another_format_is_refused_with_what_to_run(
    encoder_cache: Path, tmp_path: Path, version: int | None
) -> None:
    """encoder.json's format_version is checked, as the manifest's is: not guessed at."""
    folder = tmp_path / encoder_cache.name
    shutil.copytree(encoder_cache, folder, copy_function=os.link)
    meta = json.loads((encoder_cache / "encoder.json").read_text())
    assert meta["format_version"] == ENCODER_FORMAT
    meta["format_version"] = version
    (folder / "encoder.json").unlink()  # a hard link to the session's copy: replace, don't edit
    (folder / "encoder.json").write_text(json.dumps(meta))
    with pytest.raises(IndexIncompatible, match=r"format 1; run `qabot index --rebuild`"):
        OnnxEmbedder(folder)
    assert OnnxEmbedder(encoder_cache).dim == meta["dim"]  # the right format still loads


def test_an_encoder_without_its_optimised_graph_loads_and_saves_it_once(
    encoder_cache: Path, onnx_embedder: OnnxEmbedder, tmp_path: Path
) -> None:
    """Folders exported before the optimised graph was saved keep working, and stop paying for
    the optimisation after their first load."""
    folder = linked_copy(encoder_cache, tmp_path)
    saved = optimized_graph(folder)
    assert saved.is_file() and (saved.parent / "model.data").is_file()  # the export saved it
    shutil.rmtree(saved.parent)
    texts = paragraphs()
    first = OnnxEmbedder(folder)
    assert saved.is_file() and (saved.parent / "model.data").stat().st_size > 80_000_000
    assert not [f for f in folder.iterdir() if f.name.startswith(".")]
    np.testing.assert_allclose(first.encode(texts), onnx_embedder.encode(texts), atol=1e-5)
    stamp = saved.stat().st_mtime_ns
    np.testing.assert_allclose(OnnxEmbedder(folder).encode(texts), onnx_embedder.encode(texts), atol=1e-5)
    assert saved.stat().st_mtime_ns == stamp  # loaded, not optimised again


def test_a_damaged_optimised_graph_is_optimised_again(encoder_cache: Path, tmp_path: Path) -> None:
    folder = linked_copy(encoder_cache, tmp_path)
    saved = optimized_graph(folder)
    saved.unlink()  # a hard link to the session's copy: replace, don't edit
    saved.write_bytes(b"half a graph")
    assert OnnxEmbedder(folder).encode(["A ferry sank."]).shape == (1, 384)
    assert saved.read_bytes() != b"half a graph" and (saved.parent / "model.data").is_file()


def test_an_encoder_that_does_not_spin_encodes_the_same(encoder_cache: Path,
                                                        onnx_embedder: OnnxEmbedder) -> None:
    """A router beside its shards opens its encoder with spin=False (serve_ray.backend): same
    vectors, and the session really was told so (onnxruntime spins unless it is)."""
    from qabot import encoder

    key = "session.intra_op.allow_spinning"
    assert encoder._options(2, False, spin=False).get_session_config_entry(key) == "0"
    with pytest.raises(RuntimeError):  # unset by default: onnxruntime's own default, spinning
        encoder._options(2, False).get_session_config_entry(key)
    texts = paragraphs()[:3]
    still = OnnxEmbedder(encoder_cache, 2, spin=False)
    np.testing.assert_allclose(still.encode(texts), onnx_embedder.encode(texts), atol=1e-5)


def test_an_encoder_folder_that_cannot_be_written_still_loads(
    encoder_cache: Path, onnx_embedder: OnnxEmbedder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read-only index (a reader without write access) optimises in memory, as before."""
    folder = linked_copy(encoder_cache, tmp_path)
    shutil.rmtree(optimized_graph(folder).parent)

    def refuse(src: Any, dst: Any) -> None:
        raise PermissionError(13, "Permission denied", str(dst))

    monkeypatch.setattr(encoder.os, "rename", refuse)
    vecs = OnnxEmbedder(folder).encode(paragraphs()[:4])
    np.testing.assert_allclose(vecs, onnx_embedder.encode(paragraphs()[:4]), atol=1e-5)
    assert sorted(f.name for f in folder.iterdir()) == sorted(
        f.name for f in encoder_cache.iterdir() if f != optimized_graph(encoder_cache).parent)


def test_the_int8_encoder_stays_close_to_fp32(int8_cache: Path, onnx_embedder: OnnxEmbedder) -> None:
    """Quantized weights move every vector a little: measured on MiniLM, cosine to the fp32
    vectors is ~0.99 on average, ~0.98 at worst (per-channel scales; per-tensor gave ~0.96)."""
    int8 = OnnxEmbedder(int8_cache)
    assert (int8.precision, onnx_embedder.precision) == ("int8", "fp32")
    assert int8_cache.name != onnx_embedder.folder.name  # its own folder: never mistaken for fp32
    assert optimized_graph(int8_cache).is_file()
    size = (int8_cache / "model.onnx").stat().st_size
    assert size < (onnx_embedder.folder / "model.onnx").stat().st_size / 3  # the weights are 8-bit
    texts = paragraphs()
    cos = (int8.encode(texts) * onnx_embedder.encode(texts)).sum(axis=1)
    assert cos.mean() >= 0.98 and cos.min() >= 0.95, (cos.mean(), cos.min())
    assert np.allclose(np.linalg.norm(int8.encode(texts), axis=1), 1.0, atol=1e-4)


def test_a_precision_change_rebuilds_and_questions_use_the_new_encoder(
    real_settings: Settings, int8_cache: Path
) -> None:
    quiet: Any = lambda msg: None  # noqa: E731
    run_index(real_settings, log=quiet)
    linked_copy(int8_cache, real_settings.index)  # so the test exports nothing
    int8 = replace(real_settings, model=replace(real_settings.model, precision="int8"))
    messages: list[str] = []
    report = run_index(int8, log=messages.append)
    assert report.committed and report.rebuild_reason == "model precision changed from fp32 to int8"
    assert report.passages_embedded == report.passage_count
    manifest = store.load_manifest(int8.index)
    assert manifest is not None
    assert manifest.build.model.precision == "int8" and manifest.build.encoder == int8_cache.name
    retriever = Retriever(int8.index)
    encoder = retriever.encoder(retriever.snapshot())
    assert isinstance(encoder, OnnxEmbedder) and encoder.precision == "int8"
    assert search(retriever, "Which ferry sank?", floor=False)
    assert not run_index(int8, log=quiet).committed  # recorded: no rebuild loop


def test_an_index_from_before_precision_was_recorded_counts_as_fp32(tmp_path: Path) -> None:
    settings = fake_corpus(tmp_path / "seeds")
    index(settings, FakeEmbedder())
    path = settings.index / store.MANIFEST
    written = json.loads(path.read_text(encoding="utf-8"))
    assert written["model"]["precision"] == "fp32"
    del written["model"]["precision"]  # as an index written before this setting existed
    path.write_text(json.dumps(written), encoding="utf-8")
    manifest = store.load_manifest(settings.index)
    assert manifest is not None and manifest.build.model.precision == "fp32"
    assert plan([], [], manifest, settings).rebuild_reason is None
    int8 = replace(settings, model=replace(settings.model, precision="int8"))
    reason = plan([], [], manifest, int8).rebuild_reason
    assert reason == "model precision changed from fp32 to int8"


def test_passages_sorted_by_length_for_embedding_keep_their_own_vectors(tmp_path: Path) -> None:
    """qabot index embeds all new passages in one length order; each vector must still be
    stored under its own passage."""

    settings = fake_corpus(tmp_path / "seeds")
    (settings.seeds / "long.txt").write_text(
        " date 2024-01-09 " + " ".join(f"Sentence {i} about kites and wind." for i in range(40))
    )
    fake = FakeEmbedder()
    index(settings, fake)
    counts = dict(zip(fake.embedded, fake.count_tokens(fake.embedded), strict=True))
    assert fake.embedded == sorted(fake.embedded, key=counts.__getitem__)  # shortest first
    snap = store.load_snapshot(settings.index)
    ids = snap.rows.ids
    texts = [p.text for p in snap.catalog.passages(ids.tolist())]
    assert len(set(map(len, texts))) > 3  # lengths differ: the sort reorders them
    stored = snap.vectors.vectors_of(ids)
    np.testing.assert_allclose(stored, FakeEmbedder().encode(texts), atol=1e-6)
