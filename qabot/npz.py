"""Arrays of an .npz file memory-mapped where they lie, not read: index parts (BM25's counts,
article fingerprints) are hundreds of MB at a million passages, a question touches a few rows, and
processes on the same index share the pages."""

from __future__ import annotations

import io
import threading
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import BinaryIO

import numpy as np

# numpy reads a .npy header with ast.literal_eval, and CPython 3.11 builds ASTs with state that
# two threads can corrupt ("SystemError: AST constructor recursion depth mismatch", gh-106905):
# a reader loading a new generation while a watcher's commit reads the old one's parts hit it.
# Every header this process reads through qabot goes through this lock.
HEADERS = threading.Lock()

_NPY_HEADERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
ALIGN = 64  # .npy pads its header to 64 bytes; the member is placed so its data lands on 64 too
_PADDING_ID = 0xD935  # an extra-field id no zip tool gives meaning to (the one zipalign uses)


def save(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """What np.savez writes (uncompressed .npy members: np.load reads it), except that each
    array's data starts at a multiple of 64 bytes in the file: mapped() then gives aligned
    arrays. numpy copies an unaligned array whole for a searchsorted and works through buffers
    elsewhere: a lookup in 100,000 mapped article numbers took 59 µs unaligned, 4 µs aligned."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True) as z:
        for name, array in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.asanyarray(array), allow_pickle=False)
            data = buf.getvalue()
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_STORED
            # Where the member's bytes will start: after its local header (30 bytes, the name,
            # the extra field; a zip64 field when the member is over 4 GiB).
            assert z.fp is not None
            start = z.fp.tell() + 30 + len(info.filename.encode()) + (20 if len(data) >= 0xFFFFFFFF else 0)
            pad = -(start + 4) % ALIGN
            info.extra = _PADDING_ID.to_bytes(2, "little") + pad.to_bytes(2, "little") + bytes(pad)
            z.writestr(info, data)


def read(path: Path) -> dict[str, np.ndarray]:
    """Every array of an .npz, read whole (small files: rows, deletions)."""
    with HEADERS, np.load(path, allow_pickle=False) as z:
        return {name: z[name] for name in z.files}


def members(path: Path) -> set[str]:
    """The array names an .npz holds."""
    with zipfile.ZipFile(path) as z:
        return {n.removesuffix(".npy") for n in z.namelist()}


def mapped(path: Path, names: list[str]) -> dict[str, np.ndarray]:
    """The named arrays of an .npz, memory-mapped where they lie in the file when they can be.

    np.savez stores each array as an uncompressed .npy member of a zip: np.load can't map
    those, but each member's bytes sit contiguously at a known offset.
    """
    out: dict[str, np.ndarray] = {}
    with zipfile.ZipFile(path) as z, path.open("rb") as f:
        for name in names:
            info = z.getinfo(f"{name}.npy")
            array = _member(path, f, info)
            if array is None:
                with HEADERS:
                    array = np.load(z.open(info), allow_pickle=False)
            out[name] = array
    return out


def _member(path: Path, f: BinaryIO, info: zipfile.ZipInfo) -> np.ndarray | None:
    """One stored member as a read-only array over the file, or None when it can't be mapped
    (compressed, an unknown .npy version, objects, Fortran order or empty)."""
    if info.compress_type != zipfile.ZIP_STORED:
        return None
    f.seek(info.header_offset)
    local = f.read(30)  # the zip local file header; its name and extra field lengths vary
    f.seek(info.header_offset + 30 + int.from_bytes(local[26:28], "little")
           + int.from_bytes(local[28:30], "little"))
    read_header = _NPY_HEADERS.get(np.lib.format.read_magic(f))
    if read_header is None:
        return None
    with HEADERS:
        shape, fortran, dtype = read_header(f)
    if dtype.hasobject or fortran or not np.prod(shape):
        return None
    return np.memmap(path, dtype=dtype, mode="r", offset=f.tell(), shape=shape).view(np.ndarray)
