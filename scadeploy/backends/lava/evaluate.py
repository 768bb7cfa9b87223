"""Evaluate a compiled `model.net` on data with the emulator or Lava, against the float reference.

The float reference is the compiled directory's stripped graph (BN folded, run by torch_ref); the
data is what the directory was compiled with (or `data`): a built-in test split or the user's file.
Without labels, only agreement with the float reference is reported. Statistics are accumulated
batch by batch, so whole test sets run without holding every spike in memory.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from scadeploy.artifact.directory import open_compiled
from scadeploy.backends.lava.emulator import SimResult, emulate
from scadeploy.backends.lava.net import FixedNet
from scadeploy.backends.lava.netx import read_net
from scadeploy.backends.lava.spike_stats import firing_rates, synops
from scadeploy.backends.torch_ref import run_graph
from scadeploy.data.samples import Samples
from scadeploy.errors import ArtifactError, DataError, UnsupportedError
from scadeploy.ir.agreement import Agreement, agreement, compare_logits, count_spikes
from scadeploy.ir.graph import Graph

SIM_BACKENDS = ("emulator", "lava")
EMULATOR_BATCH = 256
LAVA_BATCH = 64  # samples per Lava run (each run starts one OS process per Lava process)


@dataclass
class SimulationReport:
    backend: str
    dataset: str
    samples: int
    accuracy: float | None  # None: the data has no labels
    float_accuracy: float | None
    agreement_with_float: float  # same predicted class as the float reference
    firing_rates: dict[str, float]
    synops_per_sample: dict[str, dict[str, float]]
    steps: int
    seconds: float
    emulator_spike_mismatches: int | None = None  # Lava only: spikes that differ from the emulator's
    inputs: str = ""  # where the samples came from, for people
    notes: list[str] = field(default_factory=list)

    @property
    def steps_per_second(self) -> float:
        return self.steps / self.seconds if self.seconds else float("inf")

    def to_dict(self) -> dict:
        total = {k: sum(v[k] for v in self.synops_per_sample.values()) for k in ("acs", "macs")}
        return asdict(self) | {"steps_per_second": self.steps_per_second, "synops_total_per_sample": total}


def simulate(out_dir: str | Path, backend: str = "emulator", samples: int | None = None, device: str = "cpu",
             progress: Callable[[int], None] | None = None, data: str | None = None,
             data_dir: str | None = None) -> SimulationReport:
    """Run the data (or its first `samples`) through `backend` and compare with the float reference."""
    if backend not in SIM_BACKENDS:
        raise UnsupportedError(f"unknown simulation backend '{backend}'", f"choose one of {', '.join(SIM_BACKENDS)}")
    check_device(device)
    compiled = open_compiled(out_dir)
    files = compiled.target_files("lava")
    if not files:
        raise DataError(f"'{out_dir}' was compiled without a Lava target",
                        "add --target loihi2-sim to scadeploy compile")
    net_path = files[0]
    if not net_path.is_file():
        raise ArtifactError(f"'{net_path}' is missing", "re-run scadeploy compile")
    net = read_net(net_path)
    graph = compiled.graph("stripped")
    inputs = compiled.samples(graph, data, data_dir)
    if samples is not None:
        inputs = inputs.take(samples)
    return _evaluate(net, net_path, graph, backend, inputs, device, progress)


def check_device(device: str) -> None:
    """'cpu', or 'cuda[:i]' when a CUDA GPU is present."""
    if device != "cpu" and not device.startswith("cuda"):
        raise UnsupportedError(f"unknown device '{device}'", "use cpu or cuda[:i]")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UnsupportedError(f"device '{device}' was asked for but CUDA is not available", "use --device cpu")


def _run(net: FixedNet, net_path: Path, backend: str, x: torch.Tensor, device: str, progress) -> SimResult:
    if backend == "lava":
        from scadeploy.backends.lava.runner import run_lava

        return run_lava(net, x, net_path=net_path, chunk_samples=4, progress=progress)
    start = time.perf_counter()
    result = emulate(net, x, device=device, progress=progress)
    result.seconds = time.perf_counter() - start
    return result


@dataclass(frozen=True)
class DeviceComparison:
    """The emulator on one device against another on the same inputs: bit-exact means 0 mismatches, equal logits
    (an `Agreement` with tolerance 0)."""

    device: str
    reference_device: str
    agreement: Agreement
    seconds: dict[str, float]  # 'device' and 'reference_device' -> emulation time

    @property
    def identical(self) -> bool:
        return bool(self.agreement.passed)

    def to_dict(self) -> dict:
        return self.agreement.to_dict() | {"device": self.device, "reference_device": self.reference_device,
                                           "seconds": self.seconds, "identical": self.identical}


def compare_devices(net: FixedNet, x: torch.Tensor, device: str, reference_device: str = "cpu",
                    batch_size: int = EMULATOR_BATCH) -> DeviceComparison:
    """Emulate `x` on `device` and on `reference_device` and count every spike and logit that differs.

    The emulator promises Lava's integer arithmetic on any device; this is how a GPU run is held to it.
    """
    for where in (device, reference_device):
        check_device(where)
    runs = []
    for where in (reference_device, device):  # two runs also when both are one device
        start = time.perf_counter()
        runs.append((emulate(net, x, batch_size=batch_size, device=where), time.perf_counter() - start))
    (reference, reference_seconds), (ours, seconds) = runs
    measured = agreement(f"lava emulator on {reference_device}", f"lava emulator on {device}", "fixed point",
                         compare_logits(reference.logits, ours.logits), 0.0,
                         count_spikes(reference.spikes, ours.spikes))
    return DeviceComparison(device, reference_device, measured,
                            {"device": seconds, "reference_device": reference_seconds})


def _evaluate(net: FixedNet, net_path: Path, graph: Graph, backend: str, inputs: Samples, device: str,
              progress) -> SimulationReport:
    batch = LAVA_BATCH if backend == "lava" else EMULATOR_BATCH
    labels = inputs.y
    correct = float_correct = agree = steps = 0
    seconds = 0.0
    mismatches = 0 if backend == "lava" else None
    rate_sums: dict[str, float] = {}
    synop_sums: dict[str, dict[str, float]] = {}
    total = inputs.count
    for start in range(0, total, batch):
        index = torch.arange(start, min(start + batch, total))
        x = inputs.x.index_select(inputs.batch_axis, index)
        result = _run(net, net_path, backend, x, device, progress)
        ref = run_graph(graph, x).logits
        n = len(index)
        if labels is not None:
            y = labels[index]
            correct += int((result.logits.argmax(1) == y).sum())
            float_correct += int((ref.argmax(1) == y).sum())
        agree += round(compare_logits(ref, result.logits).class_agreement * n)
        steps, seconds = steps + result.steps, seconds + result.seconds
        if mismatches is not None:
            mismatches += count_spikes(emulate(net, x).spikes, result.spikes).mismatches
        for name, rate in firing_rates(result).items():
            rate_sums[name] = rate_sums.get(name, 0.0) + rate * n
        for name, counts in synops(net, result).items():
            sums = synop_sums.setdefault(name, {"acs": 0.0, "macs": 0.0})
            for key, value in counts.items():
                sums[key] += value * n
    if total == 0:
        raise DataError("no samples to simulate", "pass --samples 1 or more")
    labelled = labels is not None
    return SimulationReport(
        backend, inputs.name, total, correct / total if labelled else None,
        float_correct / total if labelled else None, agree / total,
        {k: v / total for k, v in rate_sums.items()},
        {k: {kk: vv / total for kk, vv in v.items()} for k, v in synop_sums.items()},
        steps, seconds, mismatches, inputs.describe(),
        notes=["SynOps: ACs for spikes, MACs for graded input messages, counted from the simulated spikes",
               "steps include the pipeline latency; Lava time includes process start-up"
               if backend == "lava" else "emulator: batched torch, logical time (no pipeline)"])
