"""Static cost of a graph: parameters and dense multiply-accumulates per layer.

Dense MACs count every weight at every output position, per sample and per time step
(zero weights included), so they measure what a dense runtime computes. Element-wise ops (add, mul,
complement, scale) and neurons are not multiply-accumulates of weights and count zero.
"""

from __future__ import annotations

from dataclasses import dataclass

from scadeploy.ir.graph import Graph, Node, Op
from scadeploy.ir.ops import PRODUCER_OPS


@dataclass(frozen=True)
class LayerCost:
    name: str
    op: str
    out_channels: int
    params: int
    dense_macs: int  # per sample, per time step


def dense_macs(node: Node) -> int:
    if node.op is Op.CONV2D:
        a = node.attrs
        _, h, w = node.shape
        return a.out_channels * h * w * (a.in_channels // a.groups) * a.kernel_size[0] * a.kernel_size[1]
    if node.op is Op.LINEAR:
        return node.attrs.in_features * node.attrs.out_features
    return 0


def layer_costs(graph: Graph) -> list[LayerCost]:
    """One row per conv/linear layer (BN parameters are counted with the layer they follow)."""
    rows = []
    bn_params = {n.inputs[0]: n.num_params() for n in graph.of_op(Op.BATCHNORM)}
    for node in graph.of_op(*PRODUCER_OPS):
        params = node.num_params() + bn_params.get(node.name, 0)
        rows.append(LayerCost(node.name, node.op.value, node.shape[0], params, dense_macs(node)))
    return rows


def total_dense_macs(graph: Graph) -> int:
    return sum(dense_macs(n) for n in graph.nodes)
