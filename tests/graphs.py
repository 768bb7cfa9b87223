"""Build small IR graphs for tests without spelling out shapes: each node's shape comes from its op's rule."""

from __future__ import annotations

import torch

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
