"""Reproduce the VGG-16 ONNX numbers: masked vs stripped (30% of channels kept), 2 threads, 32x32, T=4.

Builds a VGG-16 checkpoint with a random 30% keep mask (SCA-style: filters, BN gamma and beta of the
pruned channels zeroed; BN statistics drawn so the neurons fire at varied rates), compiles it for
`onnx-cpu`, and times every runner on the same machine in one interleaved run. Writes
`benchmarks/results/vgg16_onnx.json` and `vgg16_onnx.png`, and prints the targets it checks:
- stripped vs masked ONNX speedup >= 0.8x the dense-MAC ratio at batch 16 (>= 0.7x at batch 1);
- stripped ONNX >= 3x faster than spikingjelly eager (masked model) at batch 1;
- stripped ONNX >= 1.2x faster than torch.onnx.export(dynamo=True) of the stripped model.

Every ONNX Runtime runner gets the same session options: ENABLE_ALL, 2 intra-op threads, channels
aligned to 8, and idle threads sleeping instead of spinning (`--spinning` restores ORT's default;
spinning threads steal the time slices of working ones when other processes share the cores).

Usage: python benchmarks/bench_vgg16.py [--repeats 30] [--threads 2] [--spinning]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import torch

from scadeploy.backends.onnx.export import OnnxOptions
from scadeploy.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from scadeploy.cli.benchmark import plot
from scadeploy.compiler import compile_checkpoint
from scadeploy.masks import apply_masks, random_masks
from scadeploy.measure.harness import benchmark_checkpoints
from scadeploy.models import build_model, randomize_batchnorm

RESULTS = Path(__file__).resolve().parent / "results"
RUNNERS = ("onnx:masked", "onnx:stripped", "onnx-step:stripped", "spikingjelly:masked", "dynamo-onnx:stripped")
TARGETS = {  # comparison key -> (batch size, required value, how the value is formed)
    "speedup_over_mac_ratio@16": (16, 0.8),
    "speedup_over_mac_ratio@1": (1, 0.7),
    "speedup_vs_spikingjelly_eager@1": (1, 3.0),
    "speedup_vs_dynamo_onnx@1": (1, 1.2),
    "speedup_vs_dynamo_onnx@16": (16, 1.2),
}


@torch.no_grad()
def masked_vgg16(path: Path, keep: float = 0.3, seed: int = 0) -> Path:
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = randomize_batchnorm(build_model("vgg16", neuron="if"), generator).eval()
    masks = random_masks(model, keep, generator)
    apply_masks(model, masks)
    ckpt = Checkpoint({"name": "vgg16", "kwargs": {"neuron": "if"}}, model.state_dict(), masks, 4, (3, 32, 32), 10,
                      meta={"keep_ratio": keep, "weights": f"random (seed {seed})"})
    return save_checkpoint(ckpt, path)


def check_targets(comparisons: list[dict]) -> list[dict]:
    by_batch = {row["batch_size"]: row for row in comparisons}
    checks = []
    for label, (batch, required) in TARGETS.items():
        value = by_batch.get(batch, {}).get(label.split("@")[0])
        checks.append({"target": label, "required": required, "measured": value,
                       "met": value is not None and value >= required})
    return checks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--spinning", action="store_true", help="let idle ONNX Runtime threads busy-wait")
    args = parser.parse_args()
    options = OnnxOptions(align_channels=8, allow_spinning=args.spinning)
    with tempfile.TemporaryDirectory() as tmp:
        source = masked_vgg16(Path(tmp) / "vgg16_masked.pt")
        _, manifest = compile_checkpoint(source, Path(tmp) / "out", ("onnx-cpu",))
        result = benchmark_checkpoints(load_checkpoint(source), load_checkpoint(Path(tmp) / "out" / "stripped.pt"),
                                       RUNNERS, (1, 16), args.threads, args.warmup, args.repeats,
                                       options=options, stripped_onnx=Path(tmp) / "out" / "model.onnx")
    data = result.to_dict()
    data["onnx_parity"] = manifest["targets"]["onnx-cpu"]["parity"]
    data["targets"] = check_targets(data["comparisons"])
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "vgg16_onnx.json").write_text(json.dumps(data, indent=2) + "\n")
    plot(result, RESULTS / "vgg16_onnx.png")
    for t in result.timings:
        print(f"{t.runner:24s} batch {t.batch_size:3d}  p50 {t.p50_ms:9.2f} ms  p90 {t.p90_ms:9.2f} ms  "
              f"{t.throughput:9.1f} samples/s")
    for check in data["targets"]:
        measured = "n/a" if check["measured"] is None else f"{check['measured']:.2f}"
        print(f"{check['target']:34s} measured {measured:>6s}  required >= {check['required']}  "
              f"{'met' if check['met'] else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
