"""The encoder folder (encoder-<hash>/ in an index): the model exported to ONNX for questions.

What goes in it (model.onnx, fp32 or quantized to int8; the tokenizer; encoder.json), the graph
onnxruntime optimised once and saved beside it, the session that loads it, the work folders a
killed export or start left behind, and whether a folder is whole. embed.OnnxEmbedder encodes
with what this module opens; embed.TorchEmbedder exports through it.
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
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import ModelUnavailable
from .store import fsync_path

ENCODER_FORMAT = 1  # of an encoder folder (encoder.json's format_version); checked on load


def encoder_folder(name: str, precision: str = "fp32") -> str:
    """The folder in an index that holds this model's ONNX export. Another export format or
    precision gets another folder, so `qabot index --rebuild` exports afresh rather than find the
    old one (fp32 folders keep the names they had before precision was a setting)."""
    key = name if ENCODER_FORMAT == 1 else f"{name} (encoder format {ENCODER_FORMAT})"
    key += "" if precision == "fp32" else f" ({precision})"
    return f"encoder-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


def export(model: Any, name: str, index_dir: Path, precision: str = "fp32") -> str:
    """Write a loaded sentence-transformers `model` (recorded as `name`) as ONNX + tokenizer
    into a new encoder folder of `index_dir`, renamed into place when whole; return its name."""
    folder = encoder_folder(name, precision)
    final = index_dir / folder
    if (final / "encoder.json").is_file():
        return folder
    pooling = _pooling_mode(model)
    hf: Any = model[0].auto_model
    hf.eval()
    accepts_types = "token_type_ids" in inspect.signature(hf.forward).parameters
    remove_abandoned(index_dir)  # an export killed before the rename (SIGKILL, power cut)
    tmp = work_folder(index_dir, folder)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        _export_to(model, name, tmp, pooling, hf, accepts_types, precision)
        os.replace(tmp, final)
    except BaseException:  # a failed or interrupted export must not leave a partial folder
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    fsync_path(index_dir)
    return folder


def _export_to(model: Any, name: str, tmp: Path, pooling: str, hf: Any, accepts_types: bool,
               precision: str) -> None:
    """Write model.onnx (quantized for int8), its optimised graph, the tokenizer and
    encoder.json into `tmp`, fsynced."""
    import torch

    names = ["input_ids", "attention_mask"] + (["token_type_ids"] if accepts_types else [])
    dummy = tuple(torch.ones((2, 8), dtype=torch.int64) for _ in names)
    axes = {n: {0: "batch", 1: "tokens"} for n in names} | {"embedding": {0: "batch"}}
    exported = tmp / ("model.onnx" if precision == "fp32" else "fp32.onnx")
    with torch.no_grad(), quiet_loading():
        torch.onnx.export(
            _Pooled(hf, pooling, accepts_types), dummy, str(exported),
            input_names=names, output_names=["embedding"], dynamic_axes=axes,
            opset_version=17, dynamo=False,
        )
    if precision == "int8":
        quantize_int8(exported, tmp / "model.onnx")
        exported.unlink()
    model.tokenizer.save_pretrained(str(tmp))
    meta = {"format_version": ENCODER_FORMAT, "model": name,
            "dim": int(model.get_embedding_dimension() or 0),
            "max_seq_length": int(model.max_seq_length or 512), "pooling": pooling, "inputs": names,
            "precision": precision}
    (tmp / "encoder.json").write_text(json.dumps(meta, indent=2))
    open_session(tmp, 1)  # optimises the graph once and saves it, for every later start
    for f in tmp.iterdir():
        fsync_path(f)


def optimized_graph(folder: Path) -> Path:
    """Where an encoder folder keeps its graph as optimised by this onnxruntime version (in a
    folder of its own, weights in a file beside it): the saved graph holds fused operators of
    that version, so another version optimises afresh."""
    import onnxruntime as ort

    return folder / f"optimized-ort-{ort.__version__}" / "model.onnx"


def open_session(folder: Path, threads: int, spin: bool = True) -> Any:
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
            return _session(saved, threads, optimize=False, spin=spin)
        except Exception:  # damaged: optimise again from model.onnx, and replace it
            shutil.rmtree(saved.parent, ignore_errors=True)
    tmp = work_folder(folder, saved.parent.name)
    session = None
    try:
        tmp.mkdir()
        session = _session(folder / "model.onnx", threads, optimize=True, save_to=tmp / saved.name, spin=spin)
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
    return session or _session(folder / "model.onnx", threads, optimize=True, spin=spin)


def token_session(folder: Path, threads: int) -> Any:
    """An onnxruntime session on the folder's model.onnx that also gives each word piece's
    vector (output "tokens", before pooling) beside the passage's ("embedding"): what sentence
    vectors are pooled from (sentvecs.py). The graph is changed in memory only, so every encoder
    folder, old ones included, serves; indexing alone opens it (it optimises for ~1 s at start)."""
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(folder / "model.onnx"))
    graph = model.graph
    feeds = {i for n in graph.node if n.op_type == "ReduceSum" for i in n.input}
    # Mean pooling is Mul(hidden, mask) then ReduceSum (_Pooled, as exported); CLS pooling has no
    # such node, and a graph exported otherwise may not either: then there are no token vectors.
    pooling = next((n for n in graph.node if n.op_type == "Mul" and n.output[0] in feeds), None)
    if pooling is None:
        raise ModelUnavailable(f"the model in {folder} does not mean-pool: no sentence vectors")
    graph.output.append(onnx.helper.make_tensor_value_info(pooling.input[0], onnx.TensorProto.FLOAT, None))
    return ort.InferenceSession(model.SerializeToString(), _options(threads, optimize=True),
                                providers=["CPUExecutionProvider"])


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


def _options(threads: int, optimize: bool, spin: bool = True) -> Any:
    """onnxruntime's session options: `threads` intra-op threads, quiet, the graph optimised
    (EXTENDED) or taken as saved. `spin`: the threads spin on for a while after each run (onnx-
    runtime's default: the next run starts ~1 ms sooner, and the cores are busy meanwhile)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.log_severity_level = 3
    if not spin:
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # EXTENDED, not ALL: ALL adds layout transforms that tie a saved graph to this CPU
    # (onnxruntime warns so), and an index folder may be copied to another machine; they do
    # nothing for a transformer on CPU anyway.
    levels = ort.GraphOptimizationLevel
    opts.graph_optimization_level = levels.ORT_ENABLE_EXTENDED if optimize else levels.ORT_DISABLE_ALL
    return opts


def _session(path: Path, threads: int, optimize: bool, save_to: Path | None = None,
             spin: bool = True) -> Any:
    import onnxruntime as ort

    opts = _options(threads, optimize, spin)
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

    with quiet_loading():  # it logs a suggestion to pre-process at WARNING
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
def quiet_loading() -> Iterator[None]:
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
