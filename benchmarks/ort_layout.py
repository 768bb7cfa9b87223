"""Which ONNX Runtime layout settings the stripped VGG-16 runs fastest with: channel alignment x optimization level.

ONNX Runtime's CPU provider runs convolutions in a blocked NCHWc layout (8 channels per block with
AVX2, 16 with AVX-512) and reorders to NCHW around every neuron, whose comparison and cast it has
no blocked kernels for. This measures the candidates for removing that overhead, in one interleaved
run on the same stripped VGG-16 as `bench_vgg16.py`: alignment 8 (the onnx-cpu default) or 16, and
optimization level `all` (NCHWc on) or `extended` (NCHWc off: no reorders, plain NCHW convolutions).
Every variant's logits are checked against the first one. Writes `benchmarks/results/ort_layout.json`.

Usage: python benchmarks/ort_layout.py [--repeats 15] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from bench_vgg16 import RESULTS, masked_vgg16

from scadeploy.backends.onnx.export import OnnxOptions, build_models
from scadeploy.backends.onnx.runtime import ort_session
from scadeploy.compiler import compile_checkpoint

VARIANTS = {f"align{a}-{level}": (a, level) for a in (8, 16) for level in ("all", "extended")}
BASELINE = "align8-all"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        source = masked_vgg16(Path(tmp) / "vgg16_masked.pt")
        result, _ = compile_checkpoint(source, Path(tmp) / "out")
    graph = result.deployable
    sessions = {}
    for name, (align, level) in VARIANTS.items():
        sequence, _ = build_models(graph, OnnxOptions(align_channels=align))
        sessions[name] = ort_session(sequence.SerializeToString(), threads=args.threads, level=level, spinning=False)
    rows = []
    for batch in (1, 16):
        x = np.random.default_rng(batch).random((batch, *graph.input.shape), dtype=np.float32)
        reference = sessions[BASELINE].run(None, {graph.input.name: x})[0]
        seconds: dict[str, list[float]] = {name: [] for name in sessions}
        for _ in range(args.repeats + 2):
            for name, session in sessions.items():
                start = time.perf_counter()
                logits = session.run(None, {graph.input.name: x})[0]
                seconds[name].append(time.perf_counter() - start)
                if np.abs(logits - reference).max() > 1e-4:
                    raise SystemExit(f"{name} disagrees with {BASELINE} at batch {batch}")
        p50 = {name: float(np.median(s[2:]) * 1e3) for name, s in seconds.items()}
        rows.append({"batch_size": batch, "p50_ms": p50,
                     "speed_vs_baseline": {name: p50[BASELINE] / v for name, v in p50.items()}})
        print(f"batch {batch}: " + ", ".join(f"{n} {v:.1f} ms ({p50[BASELINE] / v:.2f}x)" for n, v in p50.items()))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "ort_layout.json").write_text(json.dumps({"threads": args.threads, "repeats": args.repeats,
                                                         "baseline": BASELINE, "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
