"""Masks read off the weights: which conv/linear output channels were pruned SCA-style.

A producer's output channel o counts as masked when its filter `weight[o]` (and `bias[o]`) is
exactly zero and, when a batch norm reads the producer, that BN's gamma[o] and beta[o] are
exactly zero too: the signature SCA (and most structured pruning) leaves on a channel. Channels
of groups that can never be stripped (the output layer, the input, grouped convs) are not
reported. Whether a masked channel is also silent is decided later by `strip_channels`.
"""

from __future__ import annotations

import torch

from scadeploy.ir.graph import Graph, Node, Op
from scadeploy.ir.ops import PRODUCER_OPS
from scadeploy.ir.passes.channel_groups import find_channel_groups


def _zero_rows(tensor: torch.Tensor) -> torch.Tensor:
    return (tensor.reshape(tensor.shape[0], -1) == 0).all(1)


def _masked_channels(graph: Graph, node: Node) -> torch.Tensor:
    masked = _zero_rows(node.params["weight"])
    if "bias" in node.params:
        masked &= node.params["bias"] == 0
    for reader in graph.consumers(node.name):
        if reader.op is Op.BATCHNORM:
            masked &= (reader.params["weight"] == 0) & (reader.params["bias"] == 0)
    return masked


def infer_masks(graph: Graph) -> dict[str, torch.Tensor]:
    """{producer name: bool[C_out], True = kept} for every strippable conv/linear of a traced graph."""
    groups = find_channel_groups(graph)
    masks = {}
    for node in graph.of_op(*PRODUCER_OPS):
        if groups.of(node.name).fixed_reason is not None:
            continue
        masks[node.name] = ~_masked_channels(graph, node)
    return masks
