"""`qabot index --ray`: embed passages on a Ray cluster, one model replica per worker.

`RayEmbedder` is an `Embedder` (embed.py) around the model this process would use: run_index
chunks with its tokenizer as ever, and hands it every passage at once (embed.SpreadsWork). Only
the embedding moves: planning, chunking and the commit stay in this process, so the index
is the same generation-based index the single-process path writes. Workers get the very same
encoder — the ONNX export's files travel through Ray's object store, so no worker needs the index
folder; without an export they load the sentence-transformers model by name or path themselves.
Ray is an optional extra and is imported only here, inside functions.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .embed import Embedder, OnnxEmbedder, Progress, TorchEmbedder
from .errors import RayUnavailable

INSTALL_HINT = 'pip install "qabot[ray]"'
# Passages per call of a replica: large enough that Ray's per-batch overhead is small, small
# enough that the work spreads evenly over the replicas.
_BATCHES_PER_CALL = 8

# How a worker builds its replica: ("onnx", {file name: bytes}) or ("torch", model name or path).
Recipe = tuple[str, Any]


class RayEmbedder:
    """An `Embedder` whose passages are embedded on Ray; names, sizes and token counts are those
    of the local model, which `load` gives on first use (run_index's lock held, and only when
    there is something to embed: loading may export the model into the index)."""

    def __init__(self, load: Callable[[], Embedder], address: str | None = None,
                 workers: int | None = None, log: Callable[[str], None] = print) -> None:
        """`address` None starts a local Ray sized to this machine and stops it afterwards;
        "auto" or "head:6379" joins a running cluster that this machine is a node of. `workers`
        is the number of model replicas (default: one per CPU of the cluster)."""
        # Say what is wrong now, not after the corpus was read and chunked.
        _import_ray()
        if address is not None and address.startswith("ray://"):
            # Ray Data needs a driver on a cluster node: over Ray Client it fails deep inside its
            # executor ("'Worker' object has no attribute 'core_worker'", ray-project/ray#42739).
            raise RayUnavailable(
                f"Ray Data does not work over Ray Client ({address}); make this machine a node of "
                "the cluster (`ray start --address=HEAD:6379 --num-cpus=0`) and use --ray auto "
                "(docs/ray.md)"
            )
        self._load = load
        self._local: Embedder | None = None
        self.address, self.workers, self.log = address, workers, log

    @property
    def local(self) -> Embedder:
        """The model as this process would run it (what the workers are sent)."""
        if self._local is None:
            self._local = self._load()
        return self._local

    @property
    def name(self) -> str:
        return self.local.name

    @property
    def dim(self) -> int:
        return self.local.dim

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Word pieces per text, counted here by the local model's tokenizer."""
        return self.local.count_tokens(texts)

    def encode(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Unit-length float32 vectors, one row per text, embedded on Ray."""
        return self.encode_all(list(texts), batch_size, None)

    def encode_all(self, texts: list[str], batch_size: int, progress: Progress | None) -> np.ndarray:
        """Every text's vector, embedded on Ray in one job; progress told as rows come back."""
        if not texts:  # nothing to embed: don't pay for starting Ray
            return np.zeros((0, self.dim), dtype=np.float32)
        recipe = _recipe(self.local)
        with _session(self.address) as ray:
            count = self.workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
            where = "a local Ray" if self.address is None else f"Ray at {self.address}"
            self.log(f"Embedding on Ray: {len(texts)} passages over {count} workers ({where})…")
            try:
                return _run(ray, recipe, self.dim, texts, batch_size, count, progress)
            except Exception as err:  # a worker failed: nothing was committed, say what happened
                # Ray's messages end with the worker's own exception; the traceback above it
                # is in Ray's log.
                last = str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__
                raise RayUnavailable(
                    f"embedding on Ray failed ({last}); the index was left as it is"
                ) from err


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise RayUnavailable(f"--ray needs Ray, which is not installed: {INSTALL_HINT}") from None
    return ray


@contextlib.contextmanager
def _session(address: str | None) -> Iterator[Any]:
    """A connected Ray; shut down afterwards only if this call started or joined it."""
    ray = _import_ray()
    if ray.is_initialized():  # the caller manages its own session (a notebook, the tests)
        yield ray
        return
    try:
        if address is None:
            # "local": a new private Ray even when `ray start` left one running (None would join
            # it). Loopback only, so it opens no ports to the network; its start-up warnings
            # (auth tokens, ports) are about a cluster nobody else uses.
            ray.init(address="local", num_cpus=os.cpu_count() or 1, include_dashboard=False,
                     log_to_driver=False, logging_level=logging.ERROR, _node_ip_address="127.0.0.1")
        else:
            ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
    except Exception as err:
        raise RayUnavailable(
            f"cannot start or reach Ray{'' if address is None else f' at {address}'} ({err}); "
            "check the address (auto, or head:6379 once `ray start` made this machine a node)"
        ) from err
    try:
        yield ray
    finally:
        ray.shutdown()


def _recipe(embedder: Embedder) -> Recipe:
    """What a worker needs to build the very encoder this process would use."""
    if isinstance(embedder, OnnxEmbedder):
        folder: Path = embedder.folder
        # Files only: not the saved optimised graph's folder (it would double what is shipped,
        # and a worker's onnxruntime may be another version; each replica optimises model.onnx).
        return "onnx", {f.name: f.read_bytes() for f in sorted(folder.iterdir())
                        if f.is_file() and not f.name.startswith(".")}
    if isinstance(embedder, TorchEmbedder):
        # A folder must exist at the same path on every worker; a packaged model or a cached
        # hub model must be installed there.
        return "torch", embedder.name
    raise TypeError(f"cannot ship a {type(embedder).__name__} to Ray workers")


def _run(ray: Any, recipe: Recipe, dim: int, texts: list[str], batch_size: int, workers: int,
         progress: Progress | None) -> np.ndarray:
    """Embed on the connected Ray; rows come back in the order of `texts`."""
    import pyarrow as pa
    import ray.data

    tell = progress or (lambda done, total: None)
    per_call = batch_size * _BATCHES_PER_CALL
    table = pa.table({"i": np.arange(len(texts), dtype=np.int64), "text": texts})
    # At least one block per worker (Ray Data gives a replica whole blocks), a few per worker
    # when there is enough text, so a slow worker doesn't hold back the rest.
    blocks = min(len(texts), max(workers, min(workers * 4, -(-len(texts) // per_call))))
    step = -(-len(texts) // blocks)
    vecs = np.zeros((len(texts), dim), dtype=np.float32)
    seen = np.zeros(len(texts), dtype=bool)
    tell(0, len(texts))
    with _data_output(ray.data.DataContext.get_current()):
        ds = ray.data.from_arrow([table.slice(s, step) for s in range(0, len(texts), step)])
        out = ds.map_batches(
            _Replica, fn_constructor_args=([ray.put(recipe)], batch_size), batch_size=per_call,
            batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=workers), num_cpus=1,
        )
        # Ray Data may finish blocks out of order: each row carries its index back.
        for batch in out.iter_batches(batch_size=None, batch_format="numpy"):
            vecs[batch["i"]] = batch["vec"]
            seen[batch["i"]] = True
            tell(int(seen.sum()), len(texts))
    if not seen.all():
        raise RuntimeError(f"{int((~seen).sum())} of {len(texts)} passages came back without a vector")
    return vecs


@contextlib.contextmanager
def _data_output(ctx: Any) -> Iterator[None]:
    """No Ray Data progress bars (qabot's own progress is told as vectors come back, and two
    bars on one stderr garble each other); its INFO/WARNING lines (execution plans, tuning
    hints) are noise next to qabot's own. Errors still surface, as exceptions. Restored after:
    the context and the logger are process-wide."""
    data_log = logging.getLogger("ray.data")
    saved = ctx.enable_progress_bars, ctx.enable_operator_progress_bars, data_log.level
    ctx.enable_progress_bars = ctx.enable_operator_progress_bars = False
    data_log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        ctx.enable_progress_bars, ctx.enable_operator_progress_bars, level = saved
        data_log.setLevel(level)


class _Replica:
    """One model replica on a Ray worker: built once, then called batch after batch."""

    def __init__(self, recipe_ref: list[Any], batch_size: int) -> None:
        import ray

        # The ref comes wrapped in a list so that Ray hands it over as is; fetched once here.
        self.embedder = _build(ray.get(recipe_ref[0]))
        self.batch_size = batch_size

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        vecs = self.embedder.encode([str(t) for t in batch["text"]], self.batch_size)
        return {"i": batch["i"], "vec": vecs}


def _build(recipe: Recipe) -> Embedder:
    kind, payload = recipe
    if kind == "torch":
        return TorchEmbedder(payload)
    # The session and tokenizers are read into memory when built, so the files can go at once.
    with tempfile.TemporaryDirectory(prefix="qabot-encoder-") as tmp:
        for name, data in payload.items():
            (Path(tmp) / name).write_bytes(data)
        return OnnxEmbedder(Path(tmp), threads=1)  # one replica per CPU: one thread each
