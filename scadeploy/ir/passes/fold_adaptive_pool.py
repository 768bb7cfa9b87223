"""fold_adaptive_pool: merge each adaptive average pool read through a flatten into the linear layers after it.

Requires: a verified graph. A pool is folded when its only reader is a flatten whose readers are linear
layers, directly or through a `mean_over_time` (which commutes with the fixed per-channel map).
Ensures: those pools are gone; the flatten reads the pool's input; each such linear reads H*W features
per channel instead of h*w, with W'[o, c, :] = W[o, c, :] @ P, where P [h*w, H*W] is the pool's fixed
averaging matrix. Equal in exact arithmetic; W' is computed in float64 and rounded once.
Pools that cannot be folded stay; a backend that cannot run them refuses them by name.

Why fold rather than lower: the bins of an adaptive pool that is not one fixed window (1x1 -> 7x7
replicates, 2x2 -> 7x7 overlaps) have no ONNX, Loihi or NIR pooling op, but a linear layer absorbs
any fixed linear map of its input, and gets smaller when the pool replicates.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F

from scadeploy.ir.graph import Graph, Node, Op
from scadeploy.ir.ops import infer_shape
from scadeploy.ir.verify import verify


def pooling_matrix(in_size: tuple[int, int], out_size: tuple[int, int]) -> torch.Tensor:
    """P [oh*ow, H*W] in float64 with pool(x).flatten() == P @ x.flatten() for one channel."""
    h, w = in_size
    units = torch.eye(h * w, dtype=torch.float64).reshape(h * w, 1, h, w)
    return F.adaptive_avg_pool2d(units, out_size).reshape(h * w, -1).T


def _linear_readers(graph: Graph, flatten: Node) -> list[Node] | None:
    """The linear layers reading `flatten` (directly or through a time mean); None if anything else does."""
    readers = []
    for reader in graph.consumers(flatten.name):
        chain = graph.consumers(reader.name) if reader.op is Op.MEAN_OVER_TIME else [reader]
        if not chain or any(n.op is not Op.LINEAR for n in chain):
            return None
        readers += chain
    return readers or None


def _foldable(graph: Graph, pool: Node) -> tuple[Node, list[Node]] | None:
    """(the flatten, its linear readers) when `pool` folds into them."""
    readers = graph.consumers(pool.name)
    if len(readers) != 1 or readers[0].op is not Op.FLATTEN:
        return None
    linears = _linear_readers(graph, readers[0])
    return None if linears is None else (readers[0], linears)


def fold_into_linear(linear: Node, channels: int, matrix: torch.Tensor) -> Node:
    """`linear` reading the unpooled features: W'[o, c, :] = W[o, c, :] @ P."""
    weight = linear.params["weight"].double().reshape(linear.params["weight"].shape[0], channels, matrix.shape[0])
    folded = (weight @ matrix).reshape(weight.shape[0], -1)
    attrs = dataclasses.replace(linear.attrs, in_features=folded.shape[1])
    return linear.with_(attrs=attrs, params=dict(linear.params) | {"weight": folded.float()})


def fold_adaptive_pool(graph: Graph) -> Graph:
    replaced: dict[str, Node] = {}
    dropped: set[str] = set()
    for pool in graph.of_op(Op.ADAPTIVE_AVGPOOL):
        found = _foldable(graph, pool)
        if found is None:
            continue
        flatten, linears = found
        c, h, w = graph[pool.inputs[0]].shape
        matrix = pooling_matrix((h, w), pool.attrs.output_size)
        dropped.add(pool.name)
        replaced[flatten.name] = flatten.with_(inputs=pool.inputs)
        for linear in linears:
            replaced[linear.name] = fold_into_linear(linear, c, matrix)
    if not dropped:
        return graph
    return verify(graph.with_nodes(_reshaped(graph, replaced, dropped)))


def _reshaped(graph: Graph, replaced: dict[str, Node], dropped: set[str]) -> list[Node]:
    """The nodes with replacements swapped in and every shape re-derived (a folded flatten is wider)."""
    shapes: dict[str, tuple[int, ...]] = {}
    nodes = []
    for node in graph.nodes:
        if node.name in dropped:
            continue
        node = replaced.get(node.name, node)
        if node.op is not Op.INPUT:
            node = node.with_(shape=infer_shape(node.op, node.attrs, [shapes[i] for i in node.inputs]))
        shapes[node.name] = node.shape
        nodes.append(node)
    return nodes
