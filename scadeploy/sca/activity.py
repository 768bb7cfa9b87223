"""Per-channel signals SCA ranks by: spiking activity at each prunable unit's neuron, and |dL/d gamma|.

Activity is recorded by a forward hook on the neuron after each prunable Conv -> BN. The hook
replays the neuron's dynamics on its input with the IR's neuron equations (`ir/neuron.py`) (which
match spikingjelly exactly), because spikingjelly's own `store_v_seq` path is an order of
magnitude slower in training. Per channel it accumulates, over every element (t, n, h, w) of
every training batch since the last reset, one of the `SCORES`:

- "spike_v" (default):  spike + |v after reset|
- "v_pre_reset":        |v before reset| (the charged potential h)

so `scores()` is the running mean over the epoch's batches. Sums and counts are all-reduced
under torch.distributed so every rank ranks the same numbers.
"""

from __future__ import annotations

import torch
from torch import nn

from scadeploy.frontends.masks import prunable_units
from scadeploy.frontends.trace import find_converter
from scadeploy.ir.graph import NeuronAttrs
from scadeploy.ir.neuron import initial_potential, neuron_charge, neuron_fire_reset
from scadeploy.sca import distributed

SCORES = ("spike_v", "v_pre_reset")


def neuron_attrs(module: nn.Module) -> NeuronAttrs:
    """The IR's description of a spikingjelly neuron (IF, LIF, PLIF), for replaying its dynamics."""
    converter = find_converter(module)
    if converter is None:
        raise TypeError(f"{type(module).__name__} is not a neuron type scadeploy knows")
    return converter(module, ())[1]


@torch.no_grad()
def channel_activity(attrs: NeuronAttrs, x_seq: torch.Tensor, score: str = "spike_v") -> torch.Tensor:
    """Per-channel sum over (t, n, h, w) of the score, for one input `[T, N, C, ...]`, as float64 [C]."""
    v = initial_potential(attrs, x_seq[0])
    total = torch.zeros(x_seq.shape[2], dtype=torch.float64, device=x_seq.device)
    reduce_dims = [d for d in range(x_seq.dim() - 1) if d != 1]
    for x in x_seq:
        h = neuron_charge(attrs, x, v)
        spike, v = neuron_fire_reset(attrs, h)
        value = (spike + v.abs()) if score == "spike_v" else h.abs()
        total += value.sum(dim=reduce_dims, dtype=torch.float64)
    return total


def elements_per_channel(x_seq: torch.Tensor) -> int:
    """How many (t, n, h, w) values each channel of `[T, N, C, ...]` has."""
    return x_seq.numel() // x_seq.shape[2]


class ActivityRecorder:
    """Accumulates channel activity at the neuron of every prunable unit while training."""

    def __init__(self, model: nn.Module, score: str = "spike_v") -> None:
        if score not in SCORES:
            raise ValueError(f"unknown score '{score}', choose one of {', '.join(SCORES)}")
        self.score = score
        modules = dict(model.named_modules())
        self.units = prunable_units(model)
        self.channels = {u.conv: modules[u.conv].out_channels for u in self.units}
        self.sums: dict[str, torch.Tensor] = {}
        self.counts: dict[str, int] = {}
        self._handles = []
        for unit in self.units:
            hook = self._hook(unit.conv, neuron_attrs(modules[unit.neuron]))
            self._handles.append(modules[unit.neuron].register_forward_hook(hook))
        self.reset()

    def _hook(self, key: str, attrs: NeuronAttrs):
        def record(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
            if module.training:
                x_seq = inputs[0].detach()
                self.sums[key] = self.sums[key].to(x_seq.device) + channel_activity(attrs, x_seq, self.score)
                self.counts[key] += elements_per_channel(x_seq)
        return record

    def reset(self) -> None:
        """Start a new running mean (after every structure update)."""
        self.sums = {key: torch.zeros(c, dtype=torch.float64) for key, c in self.channels.items()}
        self.counts = {u.conv: 0 for u in self.units}

    def scores(self) -> dict[str, torch.Tensor]:
        """Mean activity per channel since the last reset, summed over all ranks; keyed by conv name."""
        out = {}
        for key, total in self.sums.items():
            count = torch.tensor(float(self.counts[key]), dtype=torch.float64, device=total.device)
            total, count = distributed.all_reduce_sum(total), distributed.all_reduce_sum(count)
            out[key] = (total / count.clamp(min=1)).cpu()
        return out

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()


class GammaGradRecorder:
    """|dL/d gamma| of every prunable unit's BN, summed over the last batches of an epoch (the regrowth signal)."""

    def __init__(self, model: nn.Module) -> None:
        modules = dict(model.named_modules())
        self.gammas = {u.conv: modules[u.bn].weight for u in prunable_units(model)}
        self.reset()

    def reset(self) -> None:
        self.sums = {key: torch.zeros_like(g, dtype=torch.float64) for key, g in self.gammas.items()}

    @torch.no_grad()
    def record(self) -> None:
        """Call after backward: adds the current |grad| of every gamma."""
        for key, gamma in self.gammas.items():
            if gamma.grad is not None:
                self.sums[key] += gamma.grad.abs().double()

    def scores(self) -> dict[str, torch.Tensor]:
        """Summed |dL/d gamma| per channel, averaged over ranks; keyed by conv name."""
        world = distributed.world_size()
        return {key: (distributed.all_reduce_sum(total.clone()) / world).cpu() for key, total in self.sums.items()}
