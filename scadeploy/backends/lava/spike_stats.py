"""Firing rates and SynOps counted from simulated spikes of a fixed-point network.

SynOps follow NeuroBench's effective counts: a spike (binary input, including binary input events)
that reaches a synapse with a nonzero weight is one accumulate (AC); a nonzero graded input message
(the analog first layer) is one multiply-accumulate (MAC) per nonzero synapse it reaches. Counting
is exact at padded borders, because the activated synapses of an edge are `conv(s != 0, W != 0)`
summed over outputs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from scadeploy.backends.lava.emulator import SimResult
from scadeploy.backends.lava.net import INPUT, Edge, FixedNet


def firing_rates(result: SimResult) -> dict[str, float]:
    """Mean spikes per neuron per step, per layer."""
    return {name: float(s.double().mean()) for name, s in result.spikes.items()}


def activated_synapses(edge: Edge, active: torch.Tensor) -> torch.Tensor:
    """Per sample: nonzero synapses reached by nonzero inputs; `active` is [T, N, *source shape]."""
    t, n = active.shape[:2]
    x = active.flatten(0, 1).to(torch.float64)
    mask = torch.from_numpy(edge.weight != 0).to(torch.float64)
    if edge.is_conv:
        out = F.conv2d(x, mask, None, edge.stride, edge.padding, edge.dilation, edge.groups)
    else:
        out = F.linear(x.flatten(1) if edge.flatten else x, mask)
    return out.reshape(t, n, -1).sum((0, 2))


def synops(net: FixedNet, result: SimResult) -> dict[str, dict[str, float]]:
    """Per layer: mean ACs and MACs per sample over the simulated samples."""
    if result.x_int is None:
        raise ValueError("SynOps need the simulated input frames")
    active = result.x_int != 0
    inputs = active if net.sequence_input else active.unsqueeze(0).expand(net.timesteps, *active.shape)
    counts = {}
    for layer in net.layers:
        acs = macs = 0.0
        for edge in layer.edges:
            if edge.source == INPUT and net.binary_input:
                acs += float(activated_synapses(edge, inputs).mean())
            elif edge.source == INPUT:
                macs += float(activated_synapses(edge, inputs).mean())
            else:
                acs += float(activated_synapses(edge, result.spikes[edge.source] != 0).mean())
        counts[layer.name] = {"acs": acs, "macs": macs}
    return counts
