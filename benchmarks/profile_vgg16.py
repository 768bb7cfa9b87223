"""Where the stripped VGG-16's time goes: ONNX Runtime's profiler and OpenVINO's per-layer counters.

The same network as `bench_vgg16.py` (32x32, T=4, IF, 30% of channels kept), compiled for onnx-cpu.
ONNX Runtime runs DIR/model.onnx with `SessionOptions.enable_profiling` (every kernel's duration);
OpenVINO runs it with `PERF_COUNT` (every executed layer's real time). Time is summed per op type
and per category:
- `conv/gemm`: the convolutions and the classifier's matrix products (the work the MACs count);
- `layout`: ONNX Runtime's NCHWc reorders around the ops it has no blocked kernel for (gone from
  most neurons in `onnxruntime-blocked`, the `onnx-blocked` runner's model: `backends/onnx/blocked.py`);
- `neuron`: the unrolled neuron steps (Split, Add, Less, Cast, Mul, Not, Concat);
- `pool`, `other`.
Writes `benchmarks/results/vgg16_profile.json` (shares of the summed kernel time, the top nodes).

Usage: python benchmarks/profile_vgg16.py [--runs 20] [--threads 2] [--compiled DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
import onnxruntime as ort
from bench_vgg16 import RESULTS, masked_vgg16

from scadeploy.backends.onnx.blocked import blocked_model
from scadeploy.backends.onnx.runtime import OPT_LEVELS
from scadeploy.backends.openvino.runtime import compile_openvino, openvino_available, openvino_config
from scadeploy.compiler import compile_checkpoint

WARMUP = 3
CATEGORIES = {  # op type (ONNX Runtime's or OpenVINO's) -> category
    "conv/gemm": ("Conv", "FusedConv", "Gemm", "MatMul", "FullyConnected", "Convolution"),
    "layout": ("ReorderInput", "ReorderOutput", "Reorder", "Transpose"),
    "neuron": ("Split", "Add", "Less", "Cast", "Mul", "Not", "Concat", "Eltwise", "Subgraph", "Convert",
               "VariadicSplit", "LogicalNot", "Multiply"),
    "pool": ("MaxPool", "AveragePool", "Pooling", "ReduceMean", "Reduce"),
}


def category(op_type: str) -> str:
    return next((name for name, ops in CATEGORIES.items() if op_type in ops), "other")


def summarize(samples_us: dict[str, list[float]], types: dict[str, str], top: int = 12) -> dict:
    """Milliseconds per run by op type and category, and the nodes that took longest.

    Each node counts with its median over the runs, so a run preempted by another process on the
    shared cores does not inflate the nodes it happened to hit.
    """
    times_us = {node: float(np.median(us)) for node, us in samples_us.items()}
    by_type: Counter = Counter()
    for node, us in times_us.items():
        by_type[types[node]] += us
    total = sum(by_type.values())
    by_category: Counter = Counter()
    for op_type, us in by_type.items():
        by_category[category(op_type)] += us
    return {"kernel_ms_per_run": total / 1e3, "nodes": len(times_us),
            "share_by_category": {k: v / total for k, v in by_category.most_common()},
            "share_by_op_type": {k: v / total for k, v in by_type.most_common()},
            "top_nodes": [{"node": n, "op_type": types[n], "ms_per_run": us / 1e3, "share": us / total}
                          for n, us in Counter(times_us).most_common(top)]}


def profile_onnxruntime(model: Path | bytes, x: np.ndarray, runs: int, threads: int, prefix: Path,
                        level: str = "all") -> dict:
    so = ort.SessionOptions()
    so.graph_optimization_level = OPT_LEVELS[level]
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.enable_profiling = True
    so.profile_file_prefix = str(prefix)
    session = ort.InferenceSession(model if isinstance(model, bytes) else str(model), so,
                                   providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    for _ in range(WARMUP + runs):
        session.run(None, {name: x})
    events = json.loads(Path(session.end_profiling()).read_text())
    starts = sorted(e["ts"] for e in events if e.get("cat") == "Session" and e["name"] == "model_run")
    timed_from = starts[WARMUP]
    times: dict[str, list[float]] = {}
    types: dict[str, str] = {}
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time") and e["ts"] >= timed_from:
            node = e["name"].removesuffix("_kernel_time")
            times.setdefault(node, []).append(e["dur"])
            types[node] = e["args"]["op_name"]
    runs_us = [e["dur"] for e in events if e.get("cat") == "Session" and e["name"] == "model_run"][WARMUP:]
    result = summarize(times, types)
    result["model_run_ms_p50"] = float(np.median(runs_us)) / 1e3
    return result


def profile_openvino(model: Path, x: np.ndarray, runs: int, threads: int) -> dict:
    compiled = compile_openvino(model, openvino_config(threads) | {"PERF_COUNT": "YES"})
    request = compiled.create_infer_request()
    times: dict[str, list[float]] = {}
    types: dict[str, str] = {}
    for i in range(WARMUP + runs):
        request.infer({0: x})
        if i < WARMUP:
            continue
        for info in request.get_profiling_info():
            if info.status.name != "EXECUTED":
                continue
            times.setdefault(info.node_name, []).append(info.real_time.total_seconds() * 1e6)
            types[info.node_name] = info.node_type
    return summarize(times, types)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--compiled", type=Path, help="a compiled VGG-16 directory to reuse (else compiled here)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = args.compiled
        if out is None or not (out / "model.onnx").is_file():
            out = out or Path(tmp) / "out"
            compile_checkpoint(masked_vgg16(Path(tmp) / "vgg16_masked.pt"), out, ("onnx-cpu",))
        model = out / "model.onnx"
        blocked, _ = blocked_model(model, args.threads)
        data = {"threads": args.threads, "runs": args.runs, "warmup": WARMUP, "runtimes": {}}
        for batch in (1, 16):
            x = np.random.default_rng(batch).random((batch, 3, 32, 32), dtype=np.float32)
            rows = data["runtimes"].setdefault(f"batch {batch}", {})
            rows["onnxruntime"] = profile_onnxruntime(model, x, args.runs, args.threads, Path(tmp) / "ort")
            rows["onnxruntime-blocked"] = profile_onnxruntime(blocked, x, args.runs, args.threads, Path(tmp) / "blk",
                                                              level="disable")
            if openvino_available():
                rows["openvino"] = profile_openvino(model, x, args.runs, args.threads)
            for runtime, row in rows.items():
                shares = ", ".join(f"{k} {v:.0%}" for k, v in row["share_by_category"].items())
                print(f"batch {batch} {runtime}: {row['kernel_ms_per_run']:.2f} ms of kernels over {row['nodes']} "
                      f"nodes; {shares}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "vgg16_profile.json").write_text(json.dumps(data, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
