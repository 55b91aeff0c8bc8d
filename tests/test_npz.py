"""npz.save: what np.load reads, with every array's data on a 64-byte boundary of the file, so
the arrays npz.mapped() maps are aligned (numpy copies an unaligned one whole for a lookup)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from qabot import npz

ARRAYS: dict[str, np.ndarray] = {
    "ids": np.arange(1001, dtype=np.int64), "tf": np.arange(77, dtype=np.uint16) % 7,
    "a_longer_name": np.ones((3, 5), dtype=np.float32), "empty": np.zeros(0, dtype=np.int64),
    "hashes": np.arange(13, dtype=np.uint32)}


def test_saved_arrays_map_aligned_and_load_the_same(tmp_path: Path) -> None:
    npz.save(tmp_path / "x.npz", ARRAYS)
    mapped = npz.mapped(tmp_path / "x.npz", list(ARRAYS))
    for name, array in ARRAYS.items():
        assert np.array_equal(mapped[name], array) and mapped[name].dtype == array.dtype
        if array.size:
            assert mapped[name].ctypes.data % npz.ALIGN == 0, name
    with np.load(tmp_path / "x.npz", allow_pickle=False) as z:
        assert sorted(z.files) == sorted(ARRAYS) and all(np.array_equal(z[k], v) for k, v in ARRAYS.items())


def test_an_npz_numpy_wrote_still_maps(tmp_path: Path) -> None:
    """Parts written before npz.save (np.savez: members at any offset) read as they did."""
    np.savez(tmp_path / "old.npz", **ARRAYS)  # type: ignore[arg-type]  # numpy's stub: allow_pickle
    mapped = npz.mapped(tmp_path / "old.npz", list(ARRAYS))
    assert all(np.array_equal(mapped[k], v) for k, v in ARRAYS.items())


@pytest.mark.parametrize("shift", range(0, 70, 7))
def test_alignment_holds_whatever_came_before(tmp_path: Path, shift: int) -> None:
    arrays: dict[str, np.ndarray] = {"x" * (shift + 1): np.arange(shift + 3, dtype=np.int64),
                                     "y": np.arange(5, dtype=np.int32)}
    npz.save(tmp_path / "x.npz", arrays)
    mapped = npz.mapped(tmp_path / "x.npz", list(arrays))
    assert all(m.ctypes.data % npz.ALIGN == 0 for m in mapped.values())


def test_every_header_is_read_under_the_lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """numpy parses a .npy header with ast.literal_eval, which two threads may not do at once on
    CPython 3.11 (npz.HEADERS): mapped members, members read whole, and whole files alike."""
    import ast

    seen: list[bool] = []
    real = ast.literal_eval

    def checking(node_or_string: object) -> object:
        seen.append(npz.HEADERS.locked())
        return real(node_or_string)  # type: ignore[arg-type]

    monkeypatch.setattr(ast, "literal_eval", checking)
    npz.save(tmp_path / "a.npz", {"x": np.arange(5), "empty": np.zeros(0)})  # empty: read, not mapped
    npz.mapped(tmp_path / "a.npz", ["x", "empty"])
    npz.read(tmp_path / "a.npz")
    assert len(seen) >= 4 and all(seen), seen
