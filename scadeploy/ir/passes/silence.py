"""Silence certification: which channels carry an input-independent value, and which value.

An abstract interpretation over the graph, per node output and channel: either unknown, or a
known value per time step that is the same at every position and for every input. A conv
channel whose filter only touches channels known to be zero outputs exactly its bias; BN maps
known values affinely; a neuron fed a known sequence is simulated from reset for T steps and
its spikes become known (unless the potential comes within `TIE_MARGIN` of the threshold, where
float rounding could decide). Removing a channel is exact when every conv/linear reading it sees
a known zero at every step.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from scadeploy.ir.graph import Graph, NeuronAttrs, Node, Op
from scadeploy.ir.neuron import initial_potential, neuron_charge, neuron_fire_reset
from scadeploy.ir.passes.channel_groups import ChannelGroups

TIE_MARGIN = 1e-6


@dataclass
class Known:
    """`known[c]`: channel c is input-independent; then `values[:, c]` is its value at each step."""

    known: torch.Tensor  # bool [C]
    values: torch.Tensor  # float64 [T, C]

    @classmethod
    def unknown(cls, channels: int, timesteps: int) -> Known:
        return cls(torch.zeros(channels, dtype=torch.bool), torch.zeros(timesteps, channels, dtype=torch.float64))

    def zero(self) -> torch.Tensor:
        """Channels known to be exactly zero at every step."""
        return self.known & (self.values == 0).all(0)


def _simulate_neuron(a: NeuronAttrs, x: Known) -> Known:
    v = initial_potential(a, x.values[0])
    spikes, margin = [], torch.full_like(v, float("inf"))
    for x_t in x.values:
        h = neuron_charge(a, x_t, v)
        margin = torch.minimum(margin, (h - a.v_threshold).abs())
        s, v = neuron_fire_reset(a, h)
        spikes.append(s)
    return Known(x.known & (margin > TIE_MARGIN), torch.stack(spikes))


def _producer(node: Node, x: Known, block: int, timesteps: int) -> Known:
    """Output channel o is known (= its bias) iff every input it weighs is a known zero."""
    weight = node.params["weight"]
    out_channels = weight.shape[0]
    if node.op is Op.CONV2D and node.attrs.groups != 1:
        return Known.unknown(out_channels, timesteps)
    per_input = weight.reshape(out_channels, -1, block if node.op is Op.LINEAR else weight[0, 0].numel())
    touches = (per_input != 0).any(-1)  # [C_out, C_in channels]
    known = ~(touches & ~x.zero()).any(1)
    bias = node.params["bias"].double() if "bias" in node.params else torch.zeros(out_channels, dtype=torch.float64)
    return Known(known, bias.expand(timesteps, out_channels).clone())


def _batchnorm(node: Node, x: Known) -> Known:
    p = {k: v.double() for k, v in node.params.items()}
    scale = p["weight"] / torch.sqrt(p["running_var"] + node.attrs.eps)
    return Known(x.known, (x.values - p["running_mean"]) * scale + p["bias"])


def _avgpool(node: Node, x: Known) -> Known:
    if node.attrs.padding == (0, 0):
        return x
    return Known(x.zero(), x.values)  # zero padding breaks uniformity unless the value is zero


def find_known_channels(graph: Graph, groups: ChannelGroups) -> dict[str, Known]:
    """Known per-channel values of every node output."""
    T = graph.timesteps
    known: dict[str, Known] = {}
    for node in graph.nodes:
        channels = groups.of(node.name).channels
        args = [known[i] for i in node.inputs]
        if node.op is Op.INPUT:
            result = Known.unknown(channels, T)
        elif node.op in (Op.CONV2D, Op.LINEAR):
            result = _producer(node, args[0], groups.block(node.inputs[0]), T)
        elif node.op is Op.BATCHNORM:
            result = _batchnorm(node, args[0])
        elif node.op is Op.NEURON:
            result = _simulate_neuron(node.attrs, args[0])
        elif node.op is Op.AVGPOOL:
            result = _avgpool(node, args[0])
        elif node.op is Op.ADD:
            result = Known(torch.stack([a.known for a in args]).all(0), sum(a.values for a in args))
        elif node.op is Op.MEAN_OVER_TIME:
            result = Known(args[0].known, args[0].values.mean(0, keepdim=True).expand(T, -1).clone())
        else:  # maxpool (pads with -inf), flatten, output: values pass through
            result = args[0]
        known[node.name] = result
    return known
