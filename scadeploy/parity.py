"""The compiler's own evidence: the traced graph against the user's module, the stripped graph against the
masked one. The record, comparisons and tolerances are every parity check's (`ir/agreement.py`)."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from spikingjelly.activation_based import functional
from torch import nn

from scadeploy.backends.torch_ref import run_graph
from scadeploy.ir.agreement import TOLERANCES, Agreement, agreement, compare_logits, count_spikes, float32_spikes
from scadeploy.ir.graph import Encoding, Graph, Op

MASKED, STRIPPED = "masked graph (torch_ref)", "stripped graph (torch_ref)"


@dataclass(frozen=True)
class StripParity:
    """Masked vs stripped graph on the same inputs, in float64 (no summation-order ties) and in float32
    (the arithmetic the runtimes use: a channel silent in float64 may fire in float32)."""

    float64: Agreement
    float32: Agreement
    removed_channel_spikes: int  # spikes the masked model emitted in removed channels, float64 or float32 (must be 0)

    @property
    def exact(self) -> bool:
        """Equal in exact arithmetic (float64), and every float32 difference traced to a threshold tie.

        The float32 logits are reported, not judged: a stripping bug shows in float64 already."""
        return bool(self.float64.passed) and self.removed_channel_spikes == 0 and self.float32.explained

    def to_dict(self) -> dict:
        return {"float64": self.float64.to_dict(), "float32": self.float32.to_dict(),
                "removed_channel_spikes": self.removed_channel_spikes, "exact": self.exact}


def compare_stripped(masked: Graph, stripped: Graph, kept_index: dict[str, torch.Tensor],
                     x: torch.Tensor) -> StripParity:
    """Run both graphs on `x` in float64 and float32; compare every neuron's spikes (restricted to the
    kept channels, or features after a flatten)."""
    ref, out = (run_graph(g, x, record=True, dtype=torch.float64) for g in (masked, stripped))
    ref32, out32 = (run_graph(g, x, record=True) for g in (masked, stripped))
    spikes = count_spikes(ref.spikes, out.spikes, kept_index)
    spikes32 = float32_spikes(masked, ref32.spikes, out32.spikes, x, kept_index)
    return StripParity(
        agreement(MASKED, STRIPPED, "f64", compare_logits(ref.logits, out.logits), TOLERANCES.exact, spikes),
        agreement(MASKED, STRIPPED, "f32", compare_logits(ref32.logits, out32.logits), TOLERANCES.runtime, spikes32),
        spikes.removed + spikes32.removed)


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


def compare_traced(model: nn.Module, graph: Graph, x: torch.Tensor) -> Agreement:
    """Does the traced graph compute what the module computes? Every neuron's spikes and the logits, in float64."""
    logits, spikes = run_module(model, graph, x)
    traced = run_graph(graph, x, record=True, dtype=torch.float64)
    # counted over the graph's neurons: one the module never called is a layer not compared
    counted = count_spikes(traced.spikes, spikes)
    return agreement("the model (spikingjelly)", "traced graph (torch_ref)", "f64",
                     compare_logits(logits, traced.logits), TOLERANCES.trace, counted)
