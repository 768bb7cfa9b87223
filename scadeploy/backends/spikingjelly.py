"""IR -> a multi-step spikingjelly module: the user's network rebuilt from a compiled directory alone.

Each node becomes the spikingjelly layer it came from (`layer.Conv2d`, `layer.BatchNorm2d`,
`neuron.IFNode`/`LIFNode`, pools, flatten, all in multi-step mode) holding the node's parameters,
and `forward` walks the nodes in graph order, so the rebuilt module runs the way users run their
models in eager mode, without their source code. A ParametricLIF comes back as a LIF with the
traced tau. Input: `[T, N, *shape]`; output: logits `[N, classes]` (a still time-major output is
averaged over time, as every executor of the IR does).
"""

from __future__ import annotations

import torch
from spikingjelly.activation_based import layer, neuron
from torch import nn

from scadeploy.ir.graph import Graph, NeuronKind, Node, Op
from scadeploy.ir.ops import BackendOps
from scadeploy.models.common import MeanOverTime

SPIKINGJELLY_OPS = BackendOps("spikingjelly")
"""The spikingjelly layer of every IR op: `rule(node, graph) -> module` (multi-step mode)."""


@SPIKINGJELLY_OPS.lowers(Op.NEURON, how="neuron.IFNode / LIFNode (a PLIF as a LIF with its traced tau)")
def _neuron(node: Node, graph: Graph) -> nn.Module:
    a = node.attrs
    common = dict(v_threshold=a.v_threshold, v_reset=a.v_reset, step_mode="m")
    if a.kind is NeuronKind.IF:
        return neuron.IFNode(**common)
    return neuron.LIFNode(tau=a.tau, decay_input=a.decay_input, **common)


@SPIKINGJELLY_OPS.lowers(Op.CONV2D, how="layer.Conv2d")
def _conv(node: Node, graph: Graph) -> nn.Module:
    a = node.attrs
    return layer.Conv2d(a.in_channels, a.out_channels, a.kernel_size, a.stride, a.padding, a.dilation,
                        a.groups, a.bias, step_mode="m")


@SPIKINGJELLY_OPS.lowers(Op.LINEAR, how="layer.Linear")
def _linear(node: Node, graph: Graph) -> nn.Module:
    a = node.attrs
    return layer.Linear(a.in_features, a.out_features, a.bias, step_mode="m")


@SPIKINGJELLY_OPS.lowers(Op.BATCHNORM, how="layer.BatchNorm2d / BatchNorm1d")
def _batchnorm(node: Node, graph: Graph) -> nn.Module:
    a = node.attrs
    cls = layer.BatchNorm2d if len(graph[node.inputs[0]].shape) == 3 else layer.BatchNorm1d
    return cls(a.num_features, eps=a.eps, step_mode="m").eval()


@SPIKINGJELLY_OPS.lowers(Op.MAXPOOL, how="layer.MaxPool2d")
def _maxpool(node: Node, graph: Graph) -> nn.Module:
    a = node.attrs
    return layer.MaxPool2d(a.kernel_size, a.stride, a.padding, step_mode="m")


@SPIKINGJELLY_OPS.lowers(Op.AVGPOOL, how="layer.AvgPool2d")
def _avgpool(node: Node, graph: Graph) -> nn.Module:
    a = node.attrs
    return layer.AvgPool2d(a.kernel_size, a.stride, a.padding, step_mode="m")


@SPIKINGJELLY_OPS.lowers(Op.ADAPTIVE_AVGPOOL, how="layer.AdaptiveAvgPool2d")
def _adaptive_avgpool(node: Node, graph: Graph) -> nn.Module:
    return layer.AdaptiveAvgPool2d(node.attrs.output_size, step_mode="m")


@SPIKINGJELLY_OPS.lowers(Op.FLATTEN, how="layer.Flatten")
def _flatten(node: Node, graph: Graph) -> nn.Module:
    return layer.Flatten(step_mode="m")


@SPIKINGJELLY_OPS.lowers(Op.MEAN_OVER_TIME, how="MeanOverTime")
def _mean_over_time(node: Node, graph: Graph) -> nn.Module:
    return MeanOverTime()


SPIKINGJELLY_OPS.lower(Op.INPUT, "the forward() argument [T, N, ...]")
SPIKINGJELLY_OPS.lower(Op.ADD, "a sum in forward()")
SPIKINGJELLY_OPS.lower(Op.MUL, "x * y in forward() (as SEW ResNet's sew_function computes it)")
SPIKINGJELLY_OPS.lower(Op.COMPLEMENT, "1.0 - x in forward()")
SPIKINGJELLY_OPS.lower(Op.SCALE, "x * factor in forward() (as OTTT's Scale computes it)")
IN_FORWARD = {
    Op.ADD: lambda node, args: sum(args[1:], args[0]),
    Op.MUL: lambda node, args: args[0] * args[1],
    Op.COMPLEMENT: lambda node, args: 1.0 - args[0],
    Op.SCALE: lambda node, args: args[0] * node.attrs.factor,
}
"""The element-wise ops forward() computes itself, in the order and form the spikingjelly models write them."""
SPIKINGJELLY_OPS.lower(Op.OUTPUT, "forward()'s result (time mean of a per-step output)")


def _layer(node: Node, graph: Graph) -> nn.Module | None:
    """The node's module; None for the ops forward() computes itself (input, element-wise ops, output)."""
    entry = SPIKINGJELLY_OPS.table.get(node.op)
    return SPIKINGJELLY_OPS.rule(node)(node, graph) if getattr(entry, "rule", None) else None


class GraphModule(nn.Module):
    """The graph's nodes as spikingjelly layers, run in graph order (see the module docstring)."""

    def __init__(self, graph: Graph) -> None:
        super().__init__()
        self.graph = graph
        self.layers = nn.ModuleDict()
        self._keys: dict[str, str] = {}
        for node in graph.nodes:
            module = _layer(node, graph)
            if module is None:
                continue
            key = f"n{len(self._keys)}"
            self._keys[node.name] = key
            with torch.no_grad():
                for name, value in node.params.items():
                    getattr(module, name).copy_(value)
            self.layers[key] = module

    def module_of(self, node_name: str) -> nn.Module:
        return self.layers[self._keys[node_name]]

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        values: dict[str, torch.Tensor] = {self.graph.input.name: x_seq}
        timed = True
        for node in self.graph.nodes[1:]:
            args = [values[i] for i in node.inputs]
            if node.op in IN_FORWARD:
                values[node.name] = IN_FORWARD[node.op](node, args)
            elif node.op is Op.OUTPUT:
                values[node.name] = args[0].mean(0) if timed else args[0]
            else:
                values[node.name] = self.module_of(node.name)(args[0])
                timed = timed and node.op is not Op.MEAN_OVER_TIME
        return values[self.graph.output.name]


def to_spikingjelly(graph: Graph) -> GraphModule:
    """A multi-step spikingjelly module computing `graph`, in eval mode."""
    return GraphModule(graph).eval()
