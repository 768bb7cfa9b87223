"""Build small IR graphs for tests without spelling out shapes: each node's shape comes from its op's rule."""

from __future__ import annotations

import torch

from scadeploy.ir import graph as ir
from scadeploy.ir.graph import Encoding, Graph, InputAttrs, Node, Op, OutputAttrs
from scadeploy.ir.ops import infer_shape
from scadeploy.ir.verify import verify


class GraphBuilder:
    """`b = GraphBuilder((C, H, W)); b.add("conv", Op.CONV2D, attrs, params); ...; b.graph(T)`."""

    def __init__(self, input_shape: tuple[int, ...], encoding: Encoding = Encoding.DIRECT) -> None:
        self.nodes = [Node("input", Op.INPUT, (), InputAttrs(encoding), tuple(input_shape))]

    @property
    def last(self) -> str:
        return self.nodes[-1].name

    def add(self, name: str, op: Op, attrs: object, params: dict[str, torch.Tensor] | None = None,
            inputs: tuple[str, ...] | None = None) -> str:
        inputs = inputs or (self.last,)
        shapes = [next(n for n in self.nodes if n.name == i).shape for i in inputs]
        self.nodes.append(Node(name, op, inputs, attrs, infer_shape(op, attrs, shapes), params or {}))
        return name

    def graph(self, timesteps: int = 4) -> Graph:
        """The verified graph, with an output node after the last one added."""
        self.add("output", Op.OUTPUT, OutputAttrs())
        return verify(Graph(tuple(self.nodes), timesteps))


def threshold_tie_graph() -> Graph:
    """x -> 1x1 conv (weight 1) -> IF(v_th 1) -> flatten -> linear -> IF, T=2: on `TIE_INPUT` the first IF's
    potential at position 0 is exactly its threshold at step 1 (a float32 tie), position 1 far from it."""
    b = GraphBuilder((1, 1, 2))
    b.add("conv", Op.CONV2D, ir.Conv2dAttrs(1, 1, (1, 1)), {"weight": torch.ones(1, 1, 1, 1)})
    b.add("sn1", Op.NEURON, ir.NeuronAttrs(v_threshold=1.0))
    b.add("flat", Op.FLATTEN, ir.FlattenAttrs())
    b.add("fc", Op.LINEAR, ir.LinearAttrs(2, 1), {"weight": torch.ones(1, 2)})
    b.add("sn2", Op.NEURON, ir.NeuronAttrs(v_threshold=1.0))
    return b.graph(timesteps=2)


TIE_INPUT = torch.tensor([[[[0.5, 0.25]]]])


def flipped(spikes: dict[str, torch.Tensor], *where: tuple[str, tuple]) -> dict[str, torch.Tensor]:
    """A copy of recorded spikes with the spike at each (layer, index) inverted."""
    out = {k: v.clone() for k, v in spikes.items()}
    for name, index in where:
        out[name][index] = 1 - out[name][index]
    return out
