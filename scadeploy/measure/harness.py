"""One latency harness for every runner: warm-up, interleaved repeats, percentiles and throughput.

Runners are timed round-robin (one call each, then again), so a noisy neighbour slows all of them
alike and the masked-vs-stripped ratios measured in the same run stay meaningful.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from scadeploy.artifact.directory import CompiledDir
from scadeploy.backends.onnx.align import align_channels
from scadeploy.backends.onnx.blocked import blocked_model
from scadeploy.backends.onnx.export import SEQUENCE_FILE, STEP_FILE, OnnxOptions, build_models
from scadeploy.backends.onnx.runtime import OrtRunner, OrtStepRunner
from scadeploy.backends.onnx.step import state_specs
from scadeploy.backends.openvino.runtime import OpenVinoRunner, openvino_available
from scadeploy.backends.spikingjelly import to_spikingjelly
from scadeploy.backends.torch_ref import run_graph
from scadeploy.data.samples import Samples
from scadeploy.errors import UnsupportedError
from scadeploy.frontends.checkpoint import Checkpoint
from scadeploy.frontends.trace import trace_model
from scadeploy.ir.agreement import TOLERANCES, TORCH_REF_F32, Agreement, agreement, compare_logits
from scadeploy.ir.graph import Encoding, Graph
from scadeploy.ir.passes.deploy import deployable
from scadeploy.measure.runners import (
    DynamoOnnxRunner,
    Runner,
    SpikingJellyRunner,
    TorchCompileRunner,
    TorchRefRunner,
)
from scadeploy.measure.synops import dense_macs


@dataclass(frozen=True)
class Timing:
    """Latency of one runner at one batch size (milliseconds per batch) and throughput (samples/s)."""

    runner: str
    batch_size: int
    repeats: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    min_ms: float
    throughput: float  # samples per second at the median latency

    def to_dict(self) -> dict:
        return asdict(self)


def summarize(runner: str, batch_size: int, seconds: list[float]) -> Timing:
    ms = np.asarray(seconds) * 1e3
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    return Timing(runner, batch_size, len(ms), float(p50), float(p90), float(p99), float(ms.mean()),
                  float(ms.min()), float(batch_size / (p50 / 1e3)))


@dataclass(frozen=True)
class StepTiming:
    """Streaming latency of a step runner: one time step, the state kept in the runtime (milliseconds).

    A streaming deployment pays this per event window; `per_sequence_ms` (T steps) set against the
    whole-sequence runner of the same model says what stepping costs over running T at once.
    """

    runner: str
    batch_size: int
    timesteps: int
    steps: int  # steps timed
    p50_ms: float
    p90_ms: float
    p99_ms: float
    sequence_runner: str | None = None  # the whole-sequence runner of the same model, when it was measured
    sequence_p50_ms: float | None = None
    max_diff_vs_sequence: float | None = None  # max |logit diff| after T steps, against that runner

    @property
    def per_sequence_ms(self) -> float:
        return self.timesteps * self.p50_ms

    @property
    def ratio_vs_sequence(self) -> float | None:
        return None if self.sequence_p50_ms is None else self.per_sequence_ms / self.sequence_p50_ms

    def to_dict(self) -> dict:
        return asdict(self) | {"per_sequence_ms": self.per_sequence_ms, "ratio_vs_sequence": self.ratio_vs_sequence}


def time_runners(runners: Mapping[str, Runner], x: np.ndarray, warmup: int = 3, repeats: int = 20,
                 progress: bool = True, batch_axis: int = 0,
                 steps: dict[str, list[float]] | None = None) -> dict[str, Timing]:
    """Prepare, warm up, then time every runner `repeats` times, interleaved, on the batch `x`.

    `batch_axis` is 1 for sequence inputs `[T, N, ...]`. Progress shows on terminals only. Runners
    that step through time (a `step_seconds` attribute) add each timed step's duration to `steps`.
    """
    batch = int(x.shape[batch_axis])
    for runner in runners.values():
        runner.prepare(batch)
    seconds: dict[str, list[float]] = {name: [] for name in runners}
    total = (warmup + repeats) * len(runners)
    with tqdm(total=total, desc=f"batch {batch}", unit="run", disable=None if progress else True,
              leave=False) as bar:
        for i in range(warmup + repeats):
            for name, runner in runners.items():
                start = time.perf_counter()
                runner.run(x)
                elapsed = time.perf_counter() - start
                if i >= warmup:
                    seconds[name].append(elapsed)
                    if steps is not None and hasattr(runner, "step_seconds"):
                        steps.setdefault(name, []).extend(runner.step_seconds)
                bar.update()
    return {name: summarize(name, batch, s) for name, s in seconds.items()}


# --- masked vs stripped: the comparison `scadeploy benchmark` reports ------------------------------------------

MASKED = "masked"
STRIPPED = "stripped"
RUNNER_KINDS = ("onnx", "onnx-blocked", "onnx-step", "openvino", "openvino-bf16", "torch-compile", "torch-ref",
                "spikingjelly", "dynamo-onnx")
DEFAULT_RUNNERS = ("onnx:masked", "onnx:stripped", "onnx-step:stripped", "spikingjelly:masked",
                   "dynamo-onnx:stripped")
AUTO = "auto"  # every available exact deployment runtime on the stripped model; the fastest is recommended
ONNX_LOWERED = ("onnx", "onnx-blocked", "onnx-step", "openvino", "openvino-bf16")  # scadeploy's own ONNX lowering
EXACT_KINDS = ("onnx", "onnx-blocked", "openvino", "torch-compile")  # runtimes whose logits match the reference
CPU_ONLY_KINDS = ("onnx-blocked", "openvino", "openvino-bf16")


@dataclass(frozen=True)
class Variant:
    """One model to run: its IR graph (BN folded), its spikingjelly module and, optionally, a compiled ONNX file."""

    label: str
    graph: Graph
    module: nn.Module
    onnx_model: bytes | Path | None = None  # the compiled sequence-layout file, when there is one
    step_model: bytes | Path | None = None  # the compiled step-layout file, when there is one


def auto_runners(device: str = "cpu") -> list[str]:
    """The exact runtimes `--runner auto` measures: ONNX Runtime (on the CPU also blocked), torch.compile, and
    OpenVINO when installed."""
    kinds = [k for k in EXACT_KINDS if (device == "cpu" or k not in CPU_ONLY_KINDS)
             and (k != "openvino" or openvino_available())]
    return [f"{k}:{STRIPPED}" for k in kinds]


def expand_runners(specs: Sequence[str], device: str = "cpu") -> list[str]:
    """The runner specs as 'kind:variant', `auto` replaced by `auto_runners`, each runner once, in order."""
    expanded = [r for s in specs for r in (auto_runners(device) if s == AUTO else [s])]
    return list(dict.fromkeys(":".join(parse_runner(s)) for s in expanded))


def parse_runner(spec: str) -> tuple[str, str]:
    """'kind[:variant]' -> (kind, variant); the variant defaults to the stripped model."""
    kind, _, variant = spec.partition(":")
    variant = variant or STRIPPED
    if kind not in RUNNER_KINDS or variant not in (MASKED, STRIPPED):
        raise UnsupportedError(f"unknown runner '{spec}'",
                          f"use KIND[:masked|stripped] with KIND one of {', '.join(RUNNER_KINDS)}, or {AUTO}")
    return kind, variant


def variant_from_checkpoint(label: str, ckpt: Checkpoint) -> Variant:
    module = ckpt.build()
    graph = deployable(trace_model(module, tuple(ckpt.input_shape), ckpt.timesteps))
    return Variant(label, graph, module)


def variant_from_graph(label: str, graph: Graph) -> Variant:
    """A variant from a graph alone: the spikingjelly runners get the graph rebuilt as spikingjelly layers."""
    return Variant(label, deployable(graph), to_spikingjelly(graph))


def make_runner(kind: str, variant: Variant, options: OnnxOptions, device: str = "cpu") -> Runner:
    """A runner of `kind` for `variant`; ONNX files are built from the IR when the variant has none."""
    name = f"{kind}:{variant.label}"
    # NOTE: every ONNX Runtime runner (masked, stripped, dynamo) gets the same session options.
    session = (options.provider, options.intra_op_num_threads, options.graph_optimization_level,
               options.allow_spinning)
    if kind == "onnx" and variant.onnx_model is not None:
        return OrtRunner(variant.onnx_model, name, *session)
    if kind == "onnx-step" and variant.step_model is not None:  # state shapes are read from the file
        return OrtStepRunner(variant.step_model, state_specs(variant.graph), variant.graph.timesteps, *session[:3],
                             name=name, spinning=options.allow_spinning)
    if kind in CPU_ONLY_KINDS and device != "cpu":
        raise UnsupportedError(f"runner '{kind}' runs on the CPU only", "use --device cpu")
    if kind == "onnx-blocked":
        model = variant.onnx_model or build_models(variant.graph, options)[0].SerializeToString()
        blocked, _ = blocked_model(model, options.intra_op_num_threads)
        return OrtRunner(blocked, name, "cpu", options.intra_op_num_threads, "disable", options.allow_spinning)
    if kind in ("onnx", "onnx-step"):
        sequence, step = build_models(variant.graph, options)
        if kind == "onnx":
            return OrtRunner(sequence.SerializeToString(), name, *session)
        states = state_specs(align_channels(variant.graph, options.align_channels))
        return OrtStepRunner(step.SerializeToString(), states, variant.graph.timesteps, *session[:3], name=name,
                             spinning=options.allow_spinning)
    if kind == "torch-ref":
        return TorchRefRunner(variant.graph, name, device)
    if kind == "torch-compile":
        return TorchCompileRunner(variant.graph, name, device)
    if kind in ("openvino", "openvino-bf16"):
        model = variant.onnx_model or build_models(variant.graph, options)[0].SerializeToString()
        return OpenVinoRunner(model, name, options.intra_op_num_threads, "bf16" if kind == "openvino-bf16" else "f32")
    sequence = variant.graph.input.attrs.encoding is Encoding.SEQUENCE
    if kind == "spikingjelly":
        return SpikingJellyRunner(variant.module, variant.graph.timesteps, name, device, sequence)
    return DynamoOnnxRunner(variant.module, variant.graph.input.shape, variant.graph.timesteps, name, *session,
                            sequence=sequence)


@dataclass(frozen=True)
class Quality:
    """How one runner's logits compare with the torch reference on the timed batches."""

    agreement: Agreement  # of logits alone (runners expose no spikes), in the runner's arithmetic
    accuracy: float | None  # against the data's labels, when it has them

    def to_dict(self) -> dict:
        return self.agreement.to_dict() | {"accuracy": self.accuracy}


@dataclass
class BenchmarkResult:
    timings: list[Timing]
    dense_macs: dict[str, int]  # per sample, per inference
    agreement: dict[str, float]  # runner -> max |logit diff| against the torch reference of its model
    settings: dict
    quality: dict[str, Quality] = field(default_factory=dict)
    prepare_seconds: dict[str, dict[int, float]] = field(default_factory=dict)  # compile time for torch-compile
    streaming: list[StepTiming] = field(default_factory=list)  # per-step latency of the step runners

    def recommendation(self, tolerance: float = TOLERANCES.runtime) -> dict:
        """Per batch size, the fastest exact runtime (p50) on the stripped model, among those measured."""
        by_batch = {}
        for batch in sorted({t.batch_size for t in self.timings}):
            candidates = {t.runner.split(":")[0]: t.p50_ms for t in self.timings if t.batch_size == batch
                          and t.runner.split(":") in ([k, STRIPPED] for k in EXACT_KINDS)
                          and self.agreement[t.runner] <= tolerance}
            if candidates:
                best = min(candidates, key=candidates.__getitem__)
                by_batch[str(batch)] = {"runtime": best, "p50_ms": candidates[best], "candidates_p50_ms": candidates}
        return {"by_batch_size": by_batch, "tolerance": tolerance, "threads": self.settings["threads"],
                "device": self.settings["device"], "repeats": self.settings["repeats"]}

    def timing(self, runner: str, batch_size: int) -> Timing | None:
        return next((t for t in self.timings if t.runner == runner and t.batch_size == batch_size), None)

    def comparisons(self) -> list[dict]:
        """Per batch size: stripped-vs-masked ONNX speedup against the dense-MAC ratio, and against other runtimes."""
        rows = []
        mac_ratio = self.dense_macs[MASKED] / self.dense_macs[STRIPPED]
        for batch in sorted({t.batch_size for t in self.timings}):
            ours = self.timing("onnx:stripped", batch)
            if ours is None:
                continue
            row: dict = {"batch_size": batch, "dense_mac_ratio": mac_ratio}
            for key, other in (("vs_masked_onnx", "onnx:masked"), ("vs_spikingjelly_eager", "spikingjelly:masked"),
                               ("vs_dynamo_onnx", "dynamo-onnx:stripped")):
                timing = self.timing(other, batch)
                if timing is not None:
                    row[f"speedup_{key}"] = timing.p50_ms / ours.p50_ms
            if "speedup_vs_masked_onnx" in row:
                row["speedup_over_mac_ratio"] = row["speedup_vs_masked_onnx"] / mac_ratio
            rows.append(row)
        return rows

    def to_dict(self) -> dict:
        data = {"settings": self.settings, "dense_macs_per_sample": self.dense_macs, "agreement": self.agreement,
                "quality": {k: q.to_dict() for k, q in self.quality.items()},
                "prepare_seconds": {k: {str(b): s for b, s in v.items()} for k, v in self.prepare_seconds.items()},
                "timings": [t.to_dict() for t in self.timings], "comparisons": self.comparisons(),
                "streaming": [s.to_dict() for s in self.streaming]}
        recommended = self.recommendation()
        return data | ({"recommended_runtime": recommended} if recommended["by_batch_size"] else {})


def batch_inputs(graph: Graph, batch: int, inputs: Samples | None, generator: np.random.Generator) -> np.ndarray:
    """`batch` inputs for `graph`: the given samples (repeated when fewer), else seeded noise of its layout.

    Noise is uniform frames for direct encoding and 0/1 spikes (p = 0.2) for a sequence input.
    """
    if inputs is not None:
        return inputs.cycle(batch).numpy()
    shape = (batch, *graph.input.shape)
    if graph.input.attrs.encoding is Encoding.DIRECT:
        return generator.random(shape, dtype=np.float32)
    return (generator.random((graph.timesteps, *shape)) < 0.2).astype(np.float32)


def benchmark_variants(variants: Mapping[str, Variant], runners: Sequence[str], batch_sizes: Sequence[int],
                       options: OnnxOptions, warmup: int = 3, repeats: int = 20, device: str = "cpu",
                       progress: bool = True, seed: int = 0, inputs: Samples | None = None,
                       probes: Mapping[str, Runner] | None = None) -> BenchmarkResult:
    """Time every runner spec ('kind:variant') at every batch size, all in one interleaved run.

    `probes` are timed in the same loop but ignore the batch and return no logits (e.g. one large
    convolution measuring the CPU's reachable peak beside the models); they get no agreement entry.
    """
    specs = [parse_runner(s) for s in expand_runners(runners, device)]
    built = {f"{k}:{v}": make_runner(k, variants[v], options, device) for k, v in specs}
    generator = np.random.default_rng(seed)
    timings: list[Timing] = []
    streaming: list[StepTiming] = []
    checks: dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray | None]]] = {name: [] for name in built}
    prepare_seconds: dict[str, dict[int, float]] = {name: {} for name in built}
    for batch in batch_sizes:
        x = batch_inputs(variants[STRIPPED].graph, batch, inputs, generator)
        labels = None if inputs is None or inputs.y is None else inputs.y[np.arange(batch) % inputs.count].numpy()
        for name, runner in built.items():  # every runner must compute the same logits as the reference
            start = time.perf_counter()
            runner.prepare(batch)
            prepare_seconds[name][batch] = time.perf_counter() - start
            expected = run_graph(variants[name.split(":")[1]].graph, torch.from_numpy(x)).logits.numpy()
            checks[name].append((runner.run(x), expected, labels))
        sequence = variants[STRIPPED].graph.input.attrs.encoding is Encoding.SEQUENCE
        timed = {**built, **(probes or {})}
        steps: dict[str, list[float]] = {}
        measured = time_runners(timed, x, warmup, repeats, progress, batch_axis=int(sequence), steps=steps)
        timings.extend(measured.values())
        streaming.extend(step_timing(name, batch, variants[name.split(":")[1]].graph.timesteps, seconds, measured,
                                     {k: c[-1][0] for k, c in checks.items()}) for name, seconds in steps.items())
    settings = {"threads": options.intra_op_num_threads, "provider": options.provider, "device": device,
                "graph_optimization_level": options.graph_optimization_level,
                "intra_op_allow_spinning": options.allow_spinning, "inter_op_num_threads": 1,
                "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "libgomp default (spinning)"),
                "execution_mode": "sequential",
                "align_channels": options.align_channels, "warmup": warmup, "repeats": repeats,
                "batch_sizes": list(batch_sizes), "timesteps": variants[STRIPPED].graph.timesteps,
                "input_shape": list(variants[STRIPPED].graph.input.shape), "platform": platform.platform(),
                "processor": platform.processor() or platform.machine(),
                "inputs": inputs.describe() if inputs is not None else "seeded random inputs"}
    macs = {label: dense_macs(v.graph) for label, v in variants.items()}
    quality = {name: quality_of(checks[name], name, getattr(runner, "precision", None) or "f32")
               for name, runner in built.items()}
    agreement = {name: q.agreement.max_logit_diff for name, q in quality.items()}
    return BenchmarkResult(timings, macs, agreement, settings, quality, prepare_seconds, streaming)


def step_timing(name: str, batch: int, timesteps: int, seconds: list[float], measured: Mapping[str, Timing],
                logits: Mapping[str, np.ndarray]) -> StepTiming:
    """A step runner's per-step latency, set beside the whole-sequence ONNX runner of its model when measured.

    `logits` are every runner's outputs on this batch; the step runner's after T steps must equal the
    sequence runner's (both run scadeploy's ONNX lowering of one graph).
    """
    ms = np.asarray(seconds) * 1e3
    p50, p90, p99 = (float(v) for v in np.percentile(ms, [50, 90, 99]))
    sequence = f"onnx:{name.split(':')[1]}"
    if sequence not in measured:
        return StepTiming(name, batch, timesteps, len(ms), p50, p90, p99)
    diff = compare_logits(logits[sequence], logits[name]).max_diff
    return StepTiming(name, batch, timesteps, len(ms), p50, p90, p99, sequence, measured[sequence].p50_ms, diff)


def quality_of(checks: list[tuple[np.ndarray, np.ndarray, np.ndarray | None]], runner: str,
               precision: str) -> Quality:
    """Agreement with the reference and (with labels) accuracy over (got, expected, labels) batches."""
    got = np.concatenate([g for g, _, _ in checks])
    expected = np.concatenate([e for _, e, _ in checks])
    labels = None if any(y is None for _, _, y in checks) else np.concatenate([y for _, _, y in checks])
    accuracy = None if labels is None else float((got.argmax(1) == labels).mean())
    logits = compare_logits(expected, got)
    return Quality(agreement(TORCH_REF_F32, runner, precision, logits, TOLERANCES.runtime), accuracy)


def _options(options: OnnxOptions | None, threads: int, device: str) -> OnnxOptions:
    torch.set_num_threads(threads)
    return replace(options or OnnxOptions(align_channels=8 if device == "cpu" else 1),
                   intra_op_num_threads=threads, provider=device)


def benchmark_compiled(compiled: CompiledDir, runners: Sequence[str] = DEFAULT_RUNNERS,
                       batch_sizes: Sequence[int] = (1, 16), threads: int = 2, warmup: int = 3, repeats: int = 20,
                       options: OnnxOptions | None = None, device: str = "cpu", progress: bool = True,
                       data: str | None = None, data_dir: str | None = None,
                       probes: Mapping[str, Runner] | None = None) -> BenchmarkResult:
    """Benchmark a compiled directory's stripped graph against its masked one, from the directory alone.

    The stripped ONNX runner uses DIR's own `model.onnx` on the CPU; the spikingjelly runners run the
    graphs rebuilt as spikingjelly layers (`backends/spikingjelly.py`); the inputs are the data DIR
    was compiled with, or `data`.
    """
    options = _options(options, threads, device)
    stripped = variant_from_graph(STRIPPED, compiled.graph("stripped"))
    wants_onnx = any(spec == AUTO or parse_runner(spec)[0] in ONNX_LOWERED for spec in runners)
    # a refused onnx target is an error only when a runner needs its lowering (target_files says why)
    onnx_files = compiled.target_files("onnx") if wants_onnx else []
    files = {f.name: f for f in onnx_files if f.is_file()} if device == "cpu" else {}
    stripped = replace(stripped, onnx_model=files.get(SEQUENCE_FILE), step_model=files.get(STEP_FILE))
    variants = {MASKED: variant_from_graph(MASKED, compiled.graph("masked")), STRIPPED: stripped}
    inputs = compiled.samples(stripped.graph, data, data_dir)
    return benchmark_variants(variants, runners, batch_sizes, options, warmup, repeats, device, progress,
                              inputs=inputs, probes=probes)
