"""The GPU paths on one NVIDIA GPU: onnx-cuda parity, latency against torch on CUDA, the emulator bit for bit.

Run by `benchmarks/gpu_check.sh`, which installs `scadeploy[gpu]` first. Steps, each one section of
the result; a step that fails records its error and the others still run:
- `environment`: the GPU, torch and ONNX Runtime versions, the providers ONNX Runtime offers;
- `parity`: the VGG-16 of `bench_vgg16.py` compiled for `onnx-cuda` (parity measured on the GPU);
- `latency`: `benchmark_compiled(device="cuda")` at batch 1/16/256 in one interleaved run: ONNX
  Runtime CUDA (whole sequence and per step), TensorRT's execution provider when it starts,
  torch.compile and spikingjelly eager on CUDA, each checked against the float32 torch reference;
- `emulator`: the digits net compiled for `loihi2-sim`, emulated on CUDA and on the CPU, every
  spike and logit compared (`backends/lava/evaluate.compare_devices`).
Every float32 path runs with TF32 off (torch and ONNX Runtime CUDA), since TF32 rounds conv inputs
to 10 mantissa bits and flips spikes; TensorRT builds its own engine and reports its own agreement.
Writes `benchmarks/results/gpu_check.json`.

Usage: python benchmarks/gpu_check.py [--steps environment,parity,latency,emulator] [--batch-sizes 1 16 256]
                                      [--repeats 20] [--out FILE] [--device cuda]
Exit status: 0 every step ran, 1 a step failed, 2 no CUDA GPU (the JSON says why).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import json
import platform
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from bench_vgg16 import RESULTS, masked_vgg16

from scadeploy.artifact.directory import open_compiled
from scadeploy.backends.lava.evaluate import compare_devices
from scadeploy.backends.lava.netx import read_net
from scadeploy.backends.onnx.export import OnnxOptions, build_models
from scadeploy.backends.torch_ref import run_graph
from scadeploy.compiler import compile_checkpoint
from scadeploy.frontends.checkpoint import Checkpoint, save_checkpoint
from scadeploy.frontends.masks import apply_masks, random_masks
from scadeploy.measure.harness import benchmark_compiled
from scadeploy.models import build_model, randomize_batchnorm

STEPS = ("environment", "parity", "latency", "emulator")
LATENCY_RUNNERS = ("onnx:stripped", "onnx-step:stripped", "torch-compile:stripped", "spikingjelly:masked")
TENSORRT = "TensorrtExecutionProvider"
SCHEMA = 1  # bump when a section changes shape
TOLERANCE = 1e-4  # max |logit diff| against the torch reference: the onnx-cuda target's parity tolerance


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", default=",".join(STEPS), type=_steps,
                        help=f"comma-separated, any of {', '.join(STEPS)}")
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[1, 16, 256])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--emulator-samples", type=int, default=2048)
    parser.add_argument("--device", default="cuda", help="cuda or cuda:i; 'cpu' checks the script itself")
    parser.add_argument("--out", type=Path, default=RESULTS / "gpu_check.json")
    return parser.parse_args(argv)


def _steps(text: str) -> list[str]:
    steps = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [s for s in steps if s not in STEPS]
    if unknown or not steps:
        raise argparse.ArgumentTypeError(f"unknown step(s) {', '.join(unknown) or '(none)'}; "
                                         f"choose from {', '.join(STEPS)}")
    return steps


def cuda_missing(device: str) -> str | None:
    """Why `device` cannot run here (None when it can): the message the skip path prints and records."""
    if not device.startswith("cuda"):
        return None
    if not torch.cuda.is_available():
        return (f"torch {torch.__version__} sees no CUDA GPU (built for CUDA {torch.version.cuda or 'none'}); "
                "run on a machine with an NVIDIA GPU")
    return None


def exact_float32() -> None:
    """TF32 off for torch's convolutions and matrix products: float32 as the reference computes it."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False


def environment(device: str) -> dict:
    info = {"python": platform.python_version(), "torch": torch.__version__, "torch_cuda": torch.version.cuda,
            "onnxruntime": ort.__version__, "onnxruntime_providers": ort.get_available_providers(),
            "device": device}
    if device.startswith("cuda") and torch.cuda.is_available():
        props = torch.cuda.get_device_properties(torch.device(device))
        info |= {"gpu": props.name, "gpu_memory_gib": props.total_memory / 2**30,
                 "multiprocessors": props.multi_processor_count, "cudnn": torch.backends.cudnn.version()}
    return info


def document(sections: dict[str, dict], args: argparse.Namespace, skipped: str | None = None) -> dict:
    """The result file: one section per step that ran (its result, or its error), and how it was run."""
    data = {"schema": SCHEMA, "device": args.device, "steps": list(args.steps), "batch_sizes": args.batch_sizes,
            "repeats": args.repeats, "sections": sections}
    if skipped is not None:
        data["skipped"] = skipped
    data["failed"] = sorted(k for k, v in sections.items() if "error" in v)
    return data


class TensorRtRunner:
    """The sequence model on ONNX Runtime's TensorRT provider (fp32, one engine with a dynamic batch)."""

    name = "tensorrt:stripped"

    def __init__(self, model: bytes, input_name: str, frame: Sequence[int], max_batch: int, cache: Path) -> None:
        dims = "x".join(str(d) for d in frame)
        options = {"trt_fp16_enable": False, "trt_engine_cache_enable": True, "trt_engine_cache_path": str(cache),
                   "trt_profile_min_shapes": f"{input_name}:1x{dims}",
                   "trt_profile_max_shapes": f"{input_name}:{max_batch}x{dims}",
                   "trt_profile_opt_shapes": f"{input_name}:{max_batch}x{dims}"}
        so = ort.SessionOptions()
        so.log_severity_level = 3
        self._session = ort.InferenceSession(model, so, providers=[(TENSORRT, options), "CUDAExecutionProvider"])
        if self._session.get_providers()[0] != TENSORRT:
            raise RuntimeError(f"TensorRT's provider did not start (ONNX Runtime runs {self._session.get_providers()})")
        self._input = input_name

    def prepare(self, batch_size: int) -> None:
        pass

    def run(self, x: np.ndarray) -> np.ndarray:
        return self._session.run(None, {self._input: x})[0]


def tensorrt_probe(out: Path, max_batch: int, cache: Path) -> tuple[TensorRtRunner | None, str | None]:
    """TensorRT's runner when its provider is installed and starts, else why not."""
    if TENSORRT not in ort.get_available_providers():
        return None, "ONNX Runtime offers no TensorrtExecutionProvider (pip install tensorrt-cu12 or -cu13)"
    graph = open_compiled(out).graph("stripped")
    model = build_models(graph, OnnxOptions(align_channels=1))[0].SerializeToString()
    try:
        return TensorRtRunner(model, graph.input.name, graph.input.shape, max_batch, cache), None
    except RuntimeError as exc:  # the engine build or a TensorRT library failed
        return None, f"{type(exc).__name__}: {exc}"


def step_parity(work: Path, device: str) -> dict:
    source = masked_vgg16(work / "vgg16_masked.pt")
    start = time.perf_counter()
    compile_checkpoint(source, work / "vgg16", ("onnx-cuda",))
    targets = json.loads((work / "vgg16" / "manifest.json").read_text())["targets"]
    return {"compile_seconds": time.perf_counter() - start,
            "parity": {name: section.get("parity") for name, section in targets.items()}}


def step_latency(work: Path, device: str, batch_sizes: list[int], warmup: int, repeats: int) -> dict:
    out = work / "vgg16"
    if not (out / "manifest.json").is_file():
        step_parity(work, device)
    trt, why_not = tensorrt_probe(out, max(batch_sizes), work / "trt_cache")
    probes = {trt.name: trt} if trt is not None else {}
    result = benchmark_compiled(open_compiled(out), LATENCY_RUNNERS, batch_sizes, threads=4, warmup=warmup,
                                repeats=repeats, device=device, progress=False, probes=probes)
    data = result.to_dict()
    if trt is not None:
        data["tensorrt"] = tensorrt_agreement(trt, out, batch_sizes)
    else:
        data["tensorrt"] = {"skipped": why_not}
    return data


def tensorrt_agreement(trt: TensorRtRunner, out: Path, batch_sizes: list[int]) -> dict:
    graph = open_compiled(out).graph("stripped")
    diffs = {}
    for batch in batch_sizes:
        x = torch.rand(batch, *graph.input.shape, generator=torch.Generator().manual_seed(batch))
        diffs[str(batch)] = float(np.abs(trt.run(x.numpy()) - run_graph(graph, x).logits.numpy()).max())
    worst = max(diffs.values())
    return {"max_logit_diff_by_batch": diffs, "exact": worst <= TOLERANCE, "tolerance": TOLERANCE}


def digits_lava(work: Path) -> Path:
    """The digits net (IF, 30% kept) compiled for loihi2-sim: the emulator's network."""
    generator = torch.Generator().manual_seed(0)
    model = randomize_batchnorm(build_model("digits", neuron="if"), generator).eval()
    masks = random_masks(model, 0.3, generator)
    apply_masks(model, masks)
    ckpt = Checkpoint({"name": "digits", "kwargs": {"neuron": "if"}}, model.state_dict(), masks, 4, (1, 8, 8), 10)
    compile_checkpoint(save_checkpoint(ckpt, work / "digits.pt"), work / "digits", ("loihi2-sim",))
    return work / "digits" / "model.net"


def step_emulator(work: Path, device: str, samples: int) -> dict:
    net = read_net(digits_lava(work))
    x = torch.rand(samples, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    return compare_devices(net, x, device, "cpu").to_dict()


def run_steps(args: argparse.Namespace, work: Path) -> dict[str, dict]:
    """Every asked step in order; a failure is recorded in its section and the next step still runs."""
    steps: dict[str, Callable[[], dict]] = {
        "environment": lambda: environment(args.device),
        "parity": lambda: step_parity(work, args.device),
        "latency": lambda: step_latency(work, args.device, args.batch_sizes, args.warmup, args.repeats),
        "emulator": lambda: step_emulator(work, args.device, args.emulator_samples),
    }
    sections = {}
    for name in args.steps:
        start = time.perf_counter()
        try:
            sections[name] = steps[name]()
        except Exception as exc:  # one failing GPU path must not hide the others
            sections[name] = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
        sections[name]["seconds"] = time.perf_counter() - start
        print(f"{name}: {'FAILED ' + sections[name]['error'] if 'error' in sections[name] else 'done'} "
              f"({sections[name]['seconds']:.0f} s)", flush=True)
    return sections


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    missing = cuda_missing(args.device)
    if missing is not None:
        args.out.write_text(json.dumps(document({"environment": environment("cpu")}, args, missing), indent=2) + "\n")
        print(f"gpu_check: skipped: {missing}", file=sys.stderr)
        return 2
    exact_float32()
    with tempfile.TemporaryDirectory() as tmp:
        data = document(run_steps(args, Path(tmp)), args)
    args.out.write_text(json.dumps(data, indent=2, default=str) + "\n")
    print(f"wrote {args.out}")
    return 1 if data["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
