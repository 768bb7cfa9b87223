"""Channel alignment for the ONNX backend: pad conv outputs with silent zero channels to a SIMD multiple.

ONNX Runtime's CPU convolutions take a much faster blocked path (NCHWc) when channel counts are
multiples of the vector width (8 floats for AVX2); stripped widths such as 19 or 77 fall off it.
A padded channel has zero filter weights, and every layer that reads it has zero weights for it,
so the real channels compute exactly what they computed before (a padded channel may spike only
if a zero input can reach the threshold, and even then no weight carries the spike on).

Requires: a verified, BN-folded graph. Ensures: every conv whose output reaches only convs
(or flatten -> linear) through neurons and pools has a channel count that is a multiple of
`multiple`; padded channels are appended after the real ones; the logits are unchanged.
"""

from __future__ import annotations

import dataclasses

import torch

from scadeploy.ir.graph import Graph, Node, Op
from scadeploy.ir.ops import infer_shape
from scadeploy.ir.verify import verify

PASS_THROUGH = frozenset({Op.NEURON, Op.MAXPOOL, Op.AVGPOOL})


def _readers(graph: Graph, producer: Node) -> tuple[list[Node], list[Node]] | None:
    """(channel-wise nodes on the way, conv/linear readers) or None when the channels escape elsewhere."""
    between: list[Node] = []
    readers: list[Node] = []
    frontier = [producer]
    while frontier:
        node = frontier.pop()
        for consumer in graph.consumers(node.name):
            if consumer.op in PASS_THROUGH or (consumer.op is Op.FLATTEN and node.op is not Op.FLATTEN):
                between.append(consumer)
                frontier.append(consumer)
            elif consumer.op is Op.CONV2D and consumer.attrs.groups == 1 and node.op is not Op.FLATTEN:
                readers.append(consumer)
            elif consumer.op is Op.LINEAR and node.op is Op.FLATTEN:
                readers.append(consumer)
            else:
                return None
    return between, readers


def _pad_dim(t: torch.Tensor, dim: int, extra: int) -> torch.Tensor:
    shape = list(t.shape)
    shape[dim] = extra
    return torch.cat([t, torch.zeros(shape, dtype=t.dtype)], dim=dim)


def _widen_reader(reader: Node, old: int, new: int) -> Node:
    """Zero weights for the new input channels (features, after a flatten) of a conv or linear."""
    w = reader.params["weight"]
    if reader.op is Op.CONV2D:
        attrs = dataclasses.replace(reader.attrs, in_channels=new)
        return reader.with_(attrs=attrs, params=dict(reader.params) | {"weight": _pad_dim(w, 1, new - old)})
    per_channel = reader.attrs.in_features // old
    attrs = dataclasses.replace(reader.attrs, in_features=new * per_channel)
    weight = _pad_dim(w, 1, (new - old) * per_channel)
    return reader.with_(attrs=attrs, params=dict(reader.params) | {"weight": weight})


def align_channels(graph: Graph, multiple: int) -> Graph:
    """The graph with conv output channels zero-padded up to a multiple of `multiple` where safe."""
    if multiple <= 1:
        return graph
    nodes = {n.name: n for n in graph.nodes}
    for producer in graph.of_op(Op.CONV2D):
        old = producer.attrs.out_channels
        new = -(-old // multiple) * multiple
        found = _readers(graph, producer)
        if new == old or found is None or producer.attrs.groups != 1:
            continue
        current = nodes[producer.name]
        params = dict(current.params) | {"weight": _pad_dim(current.params["weight"], 0, new - old)}
        if "bias" in params:
            params["bias"] = _pad_dim(params["bias"], 0, new - old)
        nodes[producer.name] = current.with_(attrs=dataclasses.replace(current.attrs, out_channels=new),
                                             params=params)
        between, readers = found
        for reader in readers:
            nodes[reader.name] = _widen_reader(nodes[reader.name], old, new)
        for node in between:
            nodes[node.name] = nodes[node.name].with_(shape=())  # recomputed below
    return verify(_reshape(graph.with_nodes([nodes[n.name] for n in graph.nodes])))


def _reshape(graph: Graph) -> Graph:
    """Recompute every stored shape from the shape rules (after channel counts changed)."""
    shapes: dict[str, tuple[int, ...]] = {}
    out = []
    for node in graph.nodes:
        if node.op is not Op.INPUT:
            node = node.with_(shape=infer_shape(node.op, node.attrs, [shapes[i] for i in node.inputs]))
        shapes[node.name] = node.shape
        out.append(node)
    return graph.with_nodes(out)
