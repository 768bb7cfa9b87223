"""Batch-1 and batch-16 latency variants of the stripped VGG-16, in one interleaved run, each checked exact.

The same network as `bench_vgg16.py` (32x32, T=4, IF, 30% of channels kept). Each variant is a way
to run DIR/model.onnx: ONNX Runtime with the neurons kept in its blocked layout
(`backends/onnx/blocked.py`), other thread counts, the dynamic block scheduler
(`session.dynamic_block_base`), and OpenVINO. All are timed round-robin with the conv peak probe
of `bench_vgg16.py`, so ratios to the baseline (`onnx`: level all, NCHWc, --threads) are measured
under the same load; `--rounds` repeats that whole interleaved run, and the median of the
per-round ratios is reported (the cores are shared, so one round can be off by 2x). A variant is
kept only when its logits stay within 1e-4 of the torch reference and its median ratio is above 1
at that batch size; the JSON records every one, with every round's ratio.
Writes `benchmarks/results/vgg16_latency.json`.

Usage: python benchmarks/vgg16_latency.py [--repeats 30] [--rounds 3] [--threads 2] [--compiled DIR]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from bench_vgg16 import PEAK, RESULTS, ConvPeak, executed_macs, masked_vgg16

from scadeploy.artifact.directory import open_compiled
from scadeploy.backends.onnx.blocked import blocked_model
from scadeploy.backends.onnx.runtime import OPT_LEVELS, OrtRunner
from scadeploy.backends.openvino.runtime import OpenVinoRunner, openvino_available
from scadeploy.backends.torch_ref import run_graph
from scadeploy.compiler import compile_checkpoint
from scadeploy.measure.harness import time_runners

BASELINE = "onnx"
TOLERANCE = 1e-4  # max |logit diff| against the torch reference: the onnx-cpu target's parity tolerance


class ConfiguredOrt:
    """ONNX Runtime with one extra session config entry (the harness's session helper takes none)."""

    def __init__(self, model: Path | bytes, threads: int, entries: dict[str, str], level: str = "all") -> None:
        so = ort.SessionOptions()
        so.graph_optimization_level = OPT_LEVELS[level]
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        for key, value in entries.items():
            so.add_session_config_entry(key, value)
        data = model if isinstance(model, bytes) else str(model)
        self._session = ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])

    def prepare(self, batch_size: int) -> None:
        pass

    def run(self, x: np.ndarray) -> np.ndarray:
        return self._session.run(None, {"input": x})[0]


def variants(model: Path, threads: int) -> tuple[dict, dict[str, int]]:
    """name -> runner, and the blocked regions found per thread count."""
    blocked = {n: blocked_model(model, n) for n in sorted({threads, 1})}
    runners = {
        BASELINE: OrtRunner(model, BASELINE, threads=threads, spinning=False),
        "onnx-blocked": OrtRunner(blocked[threads][0], "onnx-blocked", threads=threads, level="disable",
                                  spinning=False),
        "onnx-1thread": OrtRunner(model, "onnx-1thread", threads=1, spinning=False),
        "onnx-blocked-1thread": OrtRunner(blocked[1][0], "onnx-blocked-1thread", threads=1, level="disable",
                                          spinning=False),
        "onnx-dynamic-block-4": ConfiguredOrt(model, threads, {"session.dynamic_block_base": "4"}),
        "onnx-blocked-dynamic-block-4": ConfiguredOrt(blocked[threads][0], threads, {"session.dynamic_block_base": "4"},
                                                      "disable"),
        "onnx-spinning": OrtRunner(model, "onnx-spinning", threads=threads, spinning=True),
    }
    if openvino_available():
        runners["openvino"] = OpenVinoRunner(model, "openvino", threads)
        runners["openvino-1thread"] = OpenVinoRunner(model, "openvino-1thread", 1)
    return runners, {str(n): regions for n, (_, regions) in blocked.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved runs per batch size (medians reported)")
    parser.add_argument("--compiled", type=Path, help="a compiled VGG-16 directory to reuse (else compiled here)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        out = args.compiled
        if out is None or not (out / "model.onnx").is_file():
            out = out or Path(tmp) / "out"
            compile_checkpoint(masked_vgg16(Path(tmp) / "vgg16_masked.pt"), out, ("onnx-cpu",))
        graph = open_compiled(out).graph("stripped")
        runners, regions = variants(out / "model.onnx", args.threads)
        probe = ConvPeak(args.threads, False)
        macs = executed_macs(graph)
        rows = []
        for batch in (1, 16):
            x = np.random.default_rng(batch).random((batch, *graph.input.shape), dtype=np.float32)
            reference = run_graph(graph, torch.from_numpy(x)).logits.numpy()
            diffs = {}
            for name, runner in runners.items():
                runner.prepare(batch)
                diffs[name] = float(np.abs(runner.run(x) - reference).max())
            rounds = [time_runners({**runners, PEAK: probe}, x, args.warmup, args.repeats)
                      for _ in range(args.rounds)]
            row = {"batch_size": batch, "variants": {}, "rounds": args.rounds}
            for name in runners:  # per round: p50 and share of that round's conv peak; the medians over rounds
                ratios = [r[BASELINE].p50_ms / r[name].p50_ms for r in rounds]
                fractions = [2 * macs * batch / (r[name].p50_ms / 1e3) / (probe.flops / (r[PEAK].p50_ms / 1e3))
                             for r in rounds]
                speed = float(np.median(ratios))
                row["variants"][name] = {"p50_ms": float(np.median([r[name].p50_ms for r in rounds])),
                                         "speed_vs_baseline": speed, "speed_vs_baseline_by_round": ratios,
                                         "fraction_of_conv_peak": float(np.median(fractions)),
                                         "max_logit_diff": diffs[name], "exact": diffs[name] <= TOLERANCE,
                                         "kept": diffs[name] <= TOLERANCE and speed > 1 and name != BASELINE}
            row["conv_peak_gflops"] = float(np.median([probe.flops / (r[PEAK].p50_ms / 1e3) for r in rounds])) / 1e9
            rows.append(row)
            print(f"batch {batch}: conv peak {row['conv_peak_gflops']:.0f} GFLOP/s; " + ", ".join(
                f"{n} {v['p50_ms']:.2f} ms ({v['speed_vs_baseline']:.2f}x, {v['fraction_of_conv_peak']:.0%}"
                f"{'' if v['exact'] else ', NOT exact'})" for n, v in row["variants"].items()))
    RESULTS.mkdir(parents=True, exist_ok=True)
    data = {"threads": args.threads, "repeats": args.repeats, "rounds": args.rounds, "warmup": args.warmup,
            "baseline": BASELINE, "executed_macs_per_sample": macs, "blocked_regions": regions, "tolerance": TOLERANCE,
            "rows": rows}
    (RESULTS / "vgg16_latency.json").write_text(json.dumps(data, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
