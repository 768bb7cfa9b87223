"""The lowered fixed-point network: Loihi layers (synapses + CUBA neurons) built from a quantized IR graph.

One `FixedNet` is what the netx writer, the Lava process-graph builder and the emulator all consume.
A layer is one neuron population with the integer synapses (edges) that drive it; several edges are
summed into its input port (residual networks). `depth` is the layer's latency in Lava steps: every
synapse delays by one step, and an edge that skips layers gets `delay` extra steps so that all
inputs of a layer belong to the same input frame.

Logits: with a readout layer (non-spiking integrator, iDecay 0, vDecay 4096; one edge per readout
linear) its current after the T frames of a sample is u = 64 * sum_t a_t, so
logits = (u / 64) / (T * readout_scale) + readout_bias.
Without one, the logits are the output layer's spike rates.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from scadeploy.backends.lava.quantize import QuantReport, source_of, synapses_of
from scadeploy.ir.graph import Conv2dAttrs, Encoding, Graph, Node, Op
from scadeploy.targets.lava_limits import VTH_MAX

INPUT = "input"  # the source name of edges fed by the graded input
# NOTE: the readout integrator's threshold is the largest vThMant. It never fires: the quantizer keeps its
# current inside activation_max << 6 <= VTH_MAX << 6, and Lava fires only on v > vth << 6.
READOUT_VTH = VTH_MAX


@dataclass(frozen=True)
class Edge:
    """Integer synapses from `source` (a layer name or INPUT); conv geometry is None for dense."""

    source: str
    weight: np.ndarray  # conv (C_out, C_in/groups, kH, kW) as in PyTorch; dense (out, in)
    stride: tuple[int, int] | None = None
    padding: tuple[int, int] | None = None
    dilation: tuple[int, int] | None = None
    groups: int = 1
    flatten: bool = False  # dense reading a (C, H, W) source in CHW order
    delay: int = 0  # extra steps beyond the synapse's own one

    @property
    def is_conv(self) -> bool:
        return self.stride is not None


@dataclass(frozen=True)
class Layer:
    name: str
    shape: tuple[int, ...]  # (C, H, W) or (F,)
    edges: tuple[Edge, ...]
    bias: np.ndarray  # integer bias mantissa per channel (C,) or feature (F,); v += bias << 6
    vth: int  # vThMant: spike iff v > vth << 6 (READOUT_VTH for the readout: never)
    i_decay: int  # current decay, 4096 = no memory
    v_decay: int  # voltage decay, 0 = no leak
    spiking: bool = True
    depth: int = 1

    @property
    def neurons(self) -> int:
        return int(np.prod(self.shape))


@dataclass(frozen=True)
class FixedNet:
    input_shape: tuple[int, ...]
    timesteps: int
    input_scale: float  # x_int = clip(round(x * input_scale), -input_max, input_max)
    input_max: int
    layers: tuple[Layer, ...]
    output: str  # the readout layer, or the spiking layer whose rates are the logits
    readout_scale: float = 1.0
    readout_bias: np.ndarray = field(default_factory=lambda: np.zeros(0))
    sequence_input: bool = False  # x is [T, N, ...], one input per step (else one frame shown T times)

    @property
    def binary_input(self) -> bool:
        """0/1 input sent as binary spike events (Loihi's native input), not graded messages."""
        return self.sequence_input and self.input_max == 1 and self.input_scale == 1.0

    def samples_in(self, x_int) -> int:
        return int(x_int.shape[1] if self.sequence_input else x_int.shape[0])

    def __getitem__(self, name: str) -> Layer:
        return next(layer for layer in self.layers if layer.name == name)

    @property
    def has_readout(self) -> bool:
        return not self[self.output].spiking

    @property
    def latency(self) -> int:
        return max(layer.depth for layer in self.layers)

    @property
    def is_chain(self) -> bool:
        """One edge per layer from the layer before it: what a netx file can describe."""
        previous = INPUT
        for layer in self.layers:
            if len(layer.edges) != 1 or layer.edges[0].source != previous or layer.edges[0].delay:
                return False
            previous = layer.name
        return True

    def quantize_input(self, x) -> np.ndarray:
        """Graded input messages: integers of at most input_bits (the analog first layer)."""
        x = np.asarray(x, dtype=np.float64)
        return np.clip(np.round(x * self.input_scale), -self.input_max, self.input_max).astype(np.int64)


def _edge(graph: Graph, producer: Node) -> Edge:
    source = source_of(graph, producer.inputs[0])
    name = INPUT if source.op is Op.INPUT else source.name
    weight = producer.params["weight"].round().numpy().astype(np.int64)
    a = producer.attrs
    if isinstance(a, Conv2dAttrs):
        return Edge(name, weight, tuple(a.stride), tuple(a.padding), tuple(a.dilation), a.groups)
    return Edge(name, weight, flatten=len(source.shape) == 3)


def _bias(producers: list[Node], channels: int) -> np.ndarray:
    total = np.zeros(channels, dtype=np.int64)
    for p in producers:
        if "bias" in p.params:
            total += p.params["bias"].round().numpy().astype(np.int64)
    return total


def lower(qgraph: Graph, report: QuantReport) -> FixedNet:
    """Group the quantized graph into Loihi layers, with depths and the delays that align branches."""
    layers: list[Layer] = []
    depth = {INPUT: 0}
    for neuron in qgraph.of_op(Op.NEURON):
        q = report.layers[neuron.name]
        producers = synapses_of(qgraph, neuron)
        edges = [_edge(qgraph, p) for p in producers]
        layers.append(_aligned(Layer(neuron.name, neuron.shape, tuple(edges), _bias(producers, neuron.shape[0]),
                                     q.vth_mant, q.i_decay, q.v_decay), depth))
    readout_bias = np.zeros(0)
    readout_scale = 1.0
    if report.readout is not None:
        head = qgraph[report.readout]
        q = report.layers[head.name]
        linears = [qgraph[name] for name in q.producers]
        layers.append(_aligned(Layer(head.name, head.shape, tuple(_edge(qgraph, n) for n in linears),
                                     np.zeros(head.shape[0], dtype=np.int64), READOUT_VTH, q.i_decay, q.v_decay,
                                     spiking=False), depth))
        readout_scale = q.scale
        biases = [n.params["bias"].double().numpy() for n in linears if "bias" in n.params]
        if biases:
            readout_bias = sum(biases) / q.scale
        output = head.name
    else:
        output = source_of(qgraph, qgraph.output.inputs[0]).name
    sequence = qgraph.input.attrs.encoding is Encoding.SEQUENCE
    return FixedNet(tuple(qgraph.input.shape), qgraph.timesteps, report.input_scale, report.input_max,
                    tuple(layers), output, readout_scale, readout_bias, sequence)


def _aligned(layer: Layer, depth: dict[str, int]) -> Layer:
    d = max(depth[e.source] for e in layer.edges) + 1
    depth[layer.name] = d
    edges = tuple(_with_delay(e, d - depth[e.source] - 1) for e in layer.edges)
    return Layer(layer.name, layer.shape, edges, layer.bias, layer.vth, layer.i_decay, layer.v_decay,
                 layer.spiking, d)


def _with_delay(edge: Edge, delay: int) -> Edge:
    return Edge(edge.source, edge.weight, edge.stride, edge.padding, edge.dilation, edge.groups, edge.flatten, delay)
