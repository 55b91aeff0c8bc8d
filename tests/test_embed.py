"""The embedder's ONNX export: what it leaves on disk when it fails."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from qabot.embed import TorchEmbedder


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
