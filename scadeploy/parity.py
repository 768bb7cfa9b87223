"""Measured agreement between two executions of a model: the evidence every lowering must produce."""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass

import torch
from spikingjelly.activation_based import functional
from torch import nn

from scadeploy.backends.torch_ref import run_graph, sample_count
from scadeploy.ir.graph import Encoding, Graph, Op
from scadeploy.ir.rounding import judge_float32_flips

TRACE_LOGIT_ATOL = 1e-6  # float64: only summation order separates the model from its traced graph


@dataclass(frozen=True)
class StripParity:
    """Masked vs stripped graph on the same inputs, in float64 (no summation-order ties) and in float32
    (the arithmetic the runtimes use: a channel silent in float64 may fire in float32)."""

    samples: int
    spikes_compared: int
    spike_mismatches: int  # float64 runs
    removed_channel_spikes: int  # spikes the masked model emitted in removed channels, float64 or float32 (must be 0)
    max_logit_diff_f64: float
    max_logit_diff_f32: float
    class_agreement_f32: float
    spike_mismatches_f32: int = 0
    float32_root_flips: int = 0  # float32 flips whose upstream spikes agree in both runs (see `Float32Flips`)
    float32_ties: int = 0  # of those, within float32 rounding of the threshold

    @property
    def exact(self) -> bool:
        """Equal in exact arithmetic (float64), and every float32 difference traced to a threshold tie."""
        return (self.spike_mismatches == 0 and self.removed_channel_spikes == 0 and self.max_logit_diff_f64 < 1e-9
                and self.float32_ties == self.float32_root_flips)

    def float32_summary(self) -> str:
        """One phrase on the float32 runs, for people."""
        if self.spike_mismatches_f32 == 0:
            return "0 in float32"
        return (f"{self.spike_mismatches_f32} in float32, all downstream of {self.float32_ties} threshold ties "
                "within float32 rounding" if self.float32_ties == self.float32_root_flips else
                f"{self.spike_mismatches_f32} in float32, {self.float32_root_flips - self.float32_ties} of them not "
                "explained by float32 rounding")

    def to_dict(self) -> dict:
        return asdict(self) | {"exact": self.exact}


def compare_stripped(masked: Graph, stripped: Graph, kept_index: dict[str, torch.Tensor],
                     x: torch.Tensor) -> StripParity:
    """Run both graphs on `x` in float64 and float32; compare every neuron's spikes (restricted to the
    kept channels, or features after a flatten)."""
    ref, out = (run_graph(g, x, record=True, dtype=torch.float64) for g in (masked, stripped))
    ref32, out32 = (run_graph(g, x, record=True) for g in (masked, stripped))
    compared, mismatches, removed = _compare_spikes(ref.spikes, out.spikes, kept_index)
    _, mismatches32, removed32 = _compare_spikes(ref32.spikes, out32.spikes, kept_index)
    flips = judge_float32_flips(masked, ref32.spikes, out32.spikes, kept_index, x)
    return StripParity(
        samples=sample_count(masked, x),
        spikes_compared=compared,
        spike_mismatches=mismatches,
        removed_channel_spikes=removed + removed32,
        max_logit_diff_f64=float((ref.logits - out.logits).abs().max()),
        max_logit_diff_f32=float((ref32.logits - out32.logits).abs().max()),
        class_agreement_f32=float((ref32.logits.argmax(1) == out32.logits.argmax(1)).float().mean()),
        spike_mismatches_f32=mismatches32,
        float32_root_flips=flips.roots,
        float32_ties=flips.ties,
    )


def _compare_spikes(ref: dict[str, torch.Tensor], out: dict[str, torch.Tensor],
                    kept_index: dict[str, torch.Tensor]) -> tuple[int, int, int]:
    """(spikes compared, mismatches, spikes in removed channels); spikes are [T, N, C, ...] or [T, N, F]."""
    compared = mismatches = removed = 0
    for name, spikes in ref.items():
        index = kept_index.get(name)
        if index is not None:
            dropped = torch.ones(spikes.shape[2], dtype=torch.bool)
            dropped[index] = False
            removed += int(spikes[:, :, dropped].sum())
            spikes = spikes[:, :, index]
        compared += spikes.numel()
        mismatches += int((spikes != out[name]).sum())
    return compared, mismatches, removed


@dataclass(frozen=True)
class TraceFidelity:
    """The user's spikingjelly module against its traced IR on the same inputs, both in float64."""

    samples: int
    neurons_compared: int
    spikes_compared: int
    spike_mismatches: int
    max_logit_diff: float
    worst_layer: str | None

    @property
    def agrees(self) -> bool:
        return self.spike_mismatches == 0 and self.max_logit_diff <= TRACE_LOGIT_ATOL

    def to_dict(self) -> dict:
        return asdict(self) | {"agrees": self.agrees, "logit_atol": TRACE_LOGIT_ATOL}


MODEL_ERRORS = (RuntimeError, ValueError, IndexError, TypeError)  # what a model's own forward() raises


def run_module(model: nn.Module, graph: Graph, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The module itself in float64 on `x`; returns (logits, spikes `[T, N, ...]` of every traced neuron).

    It runs multi-step, as users run it; a model whose layers cannot (spikingjelly's OTTT neurons are
    single-step only) runs one step at a time instead, its per-step outputs averaged as every executor does."""
    x_seq = x.double()
    if graph.input.attrs.encoding is Encoding.DIRECT:
        x_seq = x_seq.unsqueeze(0).expand(graph.timesteps, *x_seq.shape)
    neurons = {n.name for n in graph.of_op(Op.NEURON)}
    try:
        out, spikes = _run_recorded(model, neurons, "m", lambda module: module(x_seq))
    except MODEL_ERRORS as multi_step_error:
        try:
            out, spikes = _run_recorded(model, neurons, "s",
                                        lambda module: torch.stack([module(frame) for frame in x_seq]))
        except MODEL_ERRORS:
            raise multi_step_error from None
    if out.dim() == len(graph.output.shape) + 2:  # a per-step head: every executor averages over time
        out = out.mean(0)
    return out, spikes


def _run_recorded(model: nn.Module, neurons: set[str], step_mode: str,
                  run) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """`run(module)` on a float64 copy in `step_mode`, recording every call of each named neuron; a
    neuron called once per step (single-step mode, or inside a MultiStepContainer) has its calls stacked."""
    module = copy.deepcopy(model).eval().double()
    functional.set_step_mode(module, step_mode)
    functional.reset_net(module)
    calls: dict[str, list[torch.Tensor]] = {name: [] for name in neurons}
    hooks = [m.register_forward_hook(lambda _m, _i, out, name=name: calls[name].append(out))
             for name, m in module.named_modules() if name in neurons]
    try:
        with torch.no_grad():
            out = run(module)
    finally:
        for hook in hooks:
            hook.remove()
        functional.reset_net(module)
    spikes = {name: outs[0] if len(outs) == 1 else torch.stack(outs) for name, outs in calls.items() if outs}
    return out, spikes


def compare_traced(model: nn.Module, graph: Graph, x: torch.Tensor) -> TraceFidelity:
    """Does the traced graph compute what the module computes? Every neuron's spikes and the logits."""
    logits, spikes = run_module(model, graph, x)
    ref = run_graph(graph, x, record=True, dtype=torch.float64)
    compared = mismatches = neurons = 0
    worst, worst_count = None, 0
    for name, traced in ref.spikes.items():
        actual = spikes.get(name)
        if actual is None or actual.shape != traced.shape:
            continue
        count = int((actual != traced).sum())
        neurons += 1
        compared += traced.numel()
        mismatches += count
        if count > worst_count:
            worst, worst_count = name, count
    if logits.shape != ref.logits.shape:
        diff = float("inf")
    else:
        diff = float((logits - ref.logits).abs().max())
    return TraceFidelity(sample_count(graph, x), neurons, compared, mismatches, diff, worst)
