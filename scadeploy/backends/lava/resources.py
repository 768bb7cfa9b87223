"""Neuro-core planning estimates for a fixed-point network against a target's [lava.resources] limits.

Per layer: neurons, synapses (connections with a nonzero weight, counted exactly at padded
borders: a conv tap counts once per output position it reaches) and the largest fan-in; cores =
max(ceil(neurons / neurons_per_core), ceil(synapses / synapses_per_core)). These are planning
estimates from public Loihi 2 figures, not a hardware mapper: they are labelled so wherever shown.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from scadeploy.backends.lava.net import INPUT, Edge, FixedNet
from scadeploy.errors import TargetError
from scadeploy.targets.backend_options import LavaResources

LABEL = "planning estimate from public Loihi 2 figures, not a hardware mapping"


@dataclass(frozen=True)
class LayerPlan:
    layer: str
    neurons: int
    synapses: int
    max_fan_in: int
    cores: int
    bound_by: str  # "neurons" or "synapses"


@dataclass(frozen=True)
class ResourcePlan:
    layers: tuple[LayerPlan, ...]
    limits: LavaResources

    @property
    def cores(self) -> int:
        return sum(p.cores for p in self.layers)

    @property
    def available_cores(self) -> int:
        return self.limits.cores_per_chip * self.limits.chips

    def to_dict(self) -> dict:
        return {"label": LABEL, "limits": asdict(self.limits), "cores": self.cores,
                "available_cores": self.available_cores,
                "neurons": sum(p.neurons for p in self.layers), "synapses": sum(p.synapses for p in self.layers),
                "layers": [asdict(p) for p in self.layers]}


def _valid_positions(size_in: int, size_out: int, kernel: int, stride: int, pad: int, dil: int) -> np.ndarray:
    """For each kernel tap, how many output positions read an in-bounds input through it."""
    out = np.arange(size_out)[:, None] * stride - pad + np.arange(kernel)[None, :] * dil
    return ((out >= 0) & (out < size_in)).sum(0)


def edge_synapses(edge: Edge, in_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> tuple[int, int]:
    """(nonzero connections, largest fan-in of one output neuron) of an edge."""
    nonzero = edge.weight != 0
    if not edge.is_conv:
        return int(nonzero.sum()), int(nonzero.sum(1).max(initial=0))
    (_, h, w), (_, oh, ow) = in_shape, out_shape
    kh, kw = edge.weight.shape[2:]
    vy = _valid_positions(h, oh, kh, edge.stride[0], edge.padding[0], edge.dilation[0])
    vx = _valid_positions(w, ow, kw, edge.stride[1], edge.padding[1], edge.dilation[1])
    taps = nonzero.sum((0, 1))  # (kH, kW): nonzero weights over all channel pairs per tap
    return int((taps * vy[:, None] * vx[None, :]).sum()), int(nonzero.reshape(nonzero.shape[0], -1).sum(1).max())


def plan_resources(net: FixedNet, limits: LavaResources) -> ResourcePlan:
    shapes = {INPUT: net.input_shape} | {layer.name: layer.shape for layer in net.layers}
    plans = []
    for layer in net.layers:
        counts = [edge_synapses(e, shapes[e.source], layer.shape) for e in layer.edges]
        synapses = sum(c[0] for c in counts)
        by_neurons = math.ceil(layer.neurons / limits.neurons_per_core)
        by_synapses = math.ceil(synapses / limits.synapses_per_core)
        plans.append(LayerPlan(layer.name, layer.neurons, synapses, sum(c[1] for c in counts),
                               max(by_neurons, by_synapses, 1), "neurons" if by_neurons >= by_synapses else "synapses"))
    return ResourcePlan(tuple(plans), limits)


def check_fits(plan: ResourcePlan) -> None:
    """TargetError naming the layer (and the resource) that does not fit, or the largest consumers."""
    available = plan.available_cores
    for p in plan.layers:
        if p.cores > available:
            amount = f"{p.neurons:,} neurons" if p.bound_by == "neurons" else f"{p.synapses:,} synapses"
            raise TargetError(f"layer '{p.layer}' needs {p.cores} neuro cores for its {amount}, more than the "
                              f"{available} the target has ({LABEL})",
                              "prune more channels, or raise chips / per-core limits in the target file")
    if plan.cores > available:
        largest = sorted(plan.layers, key=lambda p: p.cores, reverse=True)[:3]
        names = ", ".join(f"'{p.layer}' ({p.cores} cores, {p.bound_by})" for p in largest)
        raise TargetError(f"the model needs {plan.cores} neuro cores, the target has {available}; largest: {names} "
                          f"({LABEL})", "prune more channels, or raise chips in the target file")
