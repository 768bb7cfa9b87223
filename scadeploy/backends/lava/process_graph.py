"""A Lava process graph built directly from lava-nc processes, for what netx cannot express (residual nets).

Every layer is one flat `LIFReset` population (CHW order) and every edge one `Sparse` synapse
holding the conv or dense map as a CSR matrix, so ports never need reshaping and wide or grouped
convs cost a sparse matrix-vector product per step. Several synapses connected to one neuron
`a_in` are summed by Lava's input port. An edge with `delay` d > 0 first passes through d relay
stages (an identity `Sparse` and a LIF that fires iff it received a spike: iDecay = vDecay = 4096,
vThMant 0), each adding exactly one step, so both branches of a residual block deliver the same
frame; edges from one source share its relay chain, each tapping it at its own delay. Weights go
through netx's own `optimize_weight_bits`, which makes the Sparse model's weight truncation a no-op
for integer weights.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import sparse

from scadeploy.backends.lava.compat import import_lava
from scadeploy.backends.lava.net import INPUT, Edge, FixedNet, Layer


@dataclass
class ProcessGraph:
    """Handles the runner needs: input ports by extra delay, each layer's spike port and neuron."""

    inputs: list[tuple[object, int]] = field(default_factory=list)  # (InPort, extra delay)
    outputs: dict[str, object] = field(default_factory=dict)
    neurons: dict[str, object] = field(default_factory=dict)


def edge_matrix(edge: Edge, in_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> sparse.csr_matrix:
    """The edge as a (neurons out, neurons in) matrix over CHW-flattened populations (PyTorch semantics)."""
    if not edge.is_conv:
        return sparse.csr_matrix(edge.weight)
    c_in, h, w = in_shape
    c_out, oh, ow = out_shape
    w_all = edge.weight
    cig, kh, kw = w_all.shape[1:]
    per_group = c_out // edge.groups
    oy, ox, ci, ky, kx = np.meshgrid(np.arange(oh), np.arange(ow), np.arange(cig), np.arange(kh), np.arange(kw),
                                     indexing="ij")
    iy = oy * edge.stride[0] - edge.padding[0] + ky * edge.dilation[0]
    ix = ox * edge.stride[1] - edge.padding[1] + kx * edge.dilation[1]
    inside = (iy >= 0) & (iy < h) & (ix >= 0) & (ix < w)
    rows, cols, vals = [], [], []
    for co in range(c_out):
        values = w_all[co][ci, ky, kx]
        keep = inside & (values != 0)
        channel = (co // per_group) * cig + ci[keep]
        rows.append(co * oh * ow + oy[keep] * ow + ox[keep])
        cols.append(channel * h * w + iy[keep] * w + ix[keep])
        vals.append(values[keep])
    size = (c_out * oh * ow, c_in * h * w)
    return sparse.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=size)


def _synapse(matrix: sparse.csr_matrix, message_bits: int):
    Sparse = import_lava("lava.proc.sparse.process").Sparse
    optimize = import_lava("lava.lib.dl.netx.utils").optimize_weight_bits
    values = np.append(matrix.data, 0)  # sign mode and exponent as netx derives them for the full matrix
    # NOTE: with no positive weight (an inhibitory identity) netx divides 127 by the max weight 0; the
    # infinite scale loses to the negative one, so the result is right and only the warning is silenced.
    with np.errstate(divide="ignore"):
        _, bits, exponent, _ = optimize(values) if matrix.nnz else (None, 8, 0, None)
    matrix = matrix.copy()
    matrix.data = np.left_shift(matrix.data.astype(np.int32), -exponent)
    return Sparse(weights=matrix, weight_exp=exponent, num_weight_bits=bits, num_message_bits=message_bits)


def _population(layer: Layer, timesteps: int):
    LIFReset = import_lava("lava.proc.lif.process").LIFReset
    per_neuron = np.repeat(layer.bias, layer.neurons // max(len(layer.bias), 1)) if layer.bias.size else 0
    return LIFReset(shape=(layer.neurons,), vth=layer.vth, du=layer.i_decay - 1, dv=layer.v_decay,
                    bias_mant=np.asarray(per_neuron, dtype=np.int32), bias_exp=6,
                    reset_interval=timesteps, reset_offset=(1 + layer.depth) % timesteps,
                    name=layer.name)


def _relay(size: int):
    """One step of delay for binary spikes: identity synapse plus a neuron that fires iff it got a spike."""
    lif = import_lava("lava.proc.lif.process").LIF(shape=(size,), vth=0, du=4095, dv=4096, bias_mant=0, bias_exp=6)
    synapse = _synapse(sparse.identity(size, dtype=np.int64, format="csr"), 0)
    synapse.a_out.connect(lif.a_in)
    return synapse, lif


def _delayed(taps: dict[str, list], graph: ProcessGraph, source: str, size: int, delay: int):
    """`source`'s spikes `delay` steps late: one relay chain per source, tapped at every depth an edge needs."""
    ports = taps.setdefault(source, [graph.outputs[source]])
    while len(ports) <= delay:
        relay_in, relay = _relay(size)
        ports[-1].connect(relay_in.s_in)
        ports.append(relay.s_out)
    return ports[delay]


def build(net: FixedNet, input_message_bits: int) -> ProcessGraph:
    """Create (not run) the processes and connections for `net`."""
    graph = ProcessGraph()
    shapes = {INPUT: net.input_shape}
    taps: dict[str, list] = {}
    for layer in net.layers:
        neuron = _population(layer, net.timesteps)
        for edge in layer.edges:
            matrix = edge_matrix(edge, shapes[edge.source], layer.shape)
            synapse = _synapse(matrix, input_message_bits if edge.source == INPUT else 0)
            synapse.a_out.connect(neuron.a_in)
            if edge.source == INPUT:
                graph.inputs.append((synapse.s_in, edge.delay))
                continue
            size = int(np.prod(shapes[edge.source]))
            _delayed(taps, graph, edge.source, size, edge.delay).connect(synapse.s_in)
        shapes[layer.name] = layer.shape
        graph.outputs[layer.name] = neuron.s_out
        graph.neurons[layer.name] = neuron
    return graph
