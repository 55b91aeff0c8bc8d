"""The embedder's ONNX export: what it leaves on disk when it fails."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from qabot.embed import ENCODER_FORMAT, OnnxEmbedder, TorchEmbedder
from qabot.errors import IndexIncompatible


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
