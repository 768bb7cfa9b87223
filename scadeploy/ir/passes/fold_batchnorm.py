"""fold_batchnorm: merge each eval-mode batchnorm into the conv/linear that feeds it.

Requires: a verified graph. A BN is folded when its input is a conv2d/linear read by nothing else.
Ensures: those BN nodes are gone; the producer gains a bias; outputs are equal up to float rounding:
    w' = w * g / sqrt(var + eps),  b' = (b - mean) * g / sqrt(var + eps) + beta.
BNs that cannot be folded (no producer before them) stay.
"""

from __future__ import annotations

import dataclasses

import torch

from scadeploy.ir.graph import Graph, Node, Op
from scadeploy.ir.ops import PRODUCER_OPS
from scadeploy.ir.passes.rename import rebuild
from scadeploy.ir.verify import verify


def fold_into(producer: Node, bn: Node) -> Node:
    """The producer with `bn` folded into its weight and bias (computed in float64)."""
    p = {k: v.double() for k, v in bn.params.items()}
    scale = p["weight"] / torch.sqrt(p["running_var"] + bn.attrs.eps)
    weight = producer.params["weight"].double()
    bias = producer.params.get("bias", torch.zeros(weight.shape[0])).double()
    new_weight = weight * scale.reshape(-1, *([1] * (weight.dim() - 1)))
    new_bias = (bias - p["running_mean"]) * scale + p["bias"]
    return producer.with_(
        attrs=dataclasses.replace(producer.attrs, bias=True),
        params={"weight": new_weight.float(), "bias": new_bias.float()},
    )


def fold_batchnorm(graph: Graph) -> Graph:
    replaced: dict[str, Node] = {}
    dropped: dict[str, str] = {}
    for bn in graph.of_op(Op.BATCHNORM):
        (source,) = bn.inputs
        producer = graph[source]
        if producer.op in PRODUCER_OPS and len(graph.consumers(source)) == 1:
            replaced[source] = fold_into(producer, bn)
            dropped[bn.name] = source
    return verify(rebuild(graph, replaced, dropped))
