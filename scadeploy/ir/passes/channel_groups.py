"""Channel groups: which node outputs share one set of channels, so that stripping stays consistent.

A conv/linear (a producer) starts a channel space. Channel-wise ops (BN, neuron, pooling,
time mean, complement, scale) pass their input's space on; a residual `add` or an element-wise `mul`
(SEW AND/IAND) merges the spaces of its inputs into one group; `flatten` keeps the space but
spreads channel c over features [c*H*W, (c+1)*H*W), recorded as the node's `block`. A group is
`fixed` (never stripped) when it holds the graph input, feeds the graph output, or passes through a
grouped convolution.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from scadeploy.ir.graph import Graph, Node, Op
from scadeploy.ir.ops import CHANNEL_WISE_OPS, PRODUCER_OPS


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def add(self, key: str) -> None:
        self.parent.setdefault(key, key)

    def find(self, key: str) -> str:
        while self.parent[key] != key:
            self.parent[key] = self.parent[self.parent[key]]
            key = self.parent[key]
        return key

    def union(self, a: str, b: str) -> None:
        self.parent[self.find(a)] = self.find(b)


@dataclass
class ChannelGroup:
    """Node outputs sharing channels. `members` maps node name -> block (features per channel)."""

    key: str
    channels: int
    members: dict[str, int] = field(default_factory=dict)
    producers: list[str] = field(default_factory=list)
    fixed_reason: str | None = None


@dataclass
class ChannelGroups:
    groups: dict[str, ChannelGroup]
    group_of: dict[str, str]  # node name -> group key

    def of(self, node_name: str) -> ChannelGroup:
        return self.groups[self.group_of[node_name]]

    def block(self, node_name: str) -> int:
        return self.of(node_name).members[node_name]


def _channels_and_block(node: Node, graph: Graph, blocks: dict[str, int]) -> int:
    if node.op is Op.FLATTEN:
        (source,) = node.inputs
        c, *spatial = graph[source].shape
        size = 1
        for d in spatial:
            size *= d
        blocks[node.name] = blocks[source] * size
    elif _mixes_blocks(node, blocks):
        blocks[node.name] = 1
    elif node.op in CHANNEL_WISE_OPS or node.op is Op.OUTPUT:
        blocks[node.name] = blocks[node.inputs[0]]
    else:
        blocks[node.name] = 1
    return node.shape[0] // blocks[node.name]


def _mixes_blocks(node: Node, blocks: dict[str, int]) -> bool:
    """A multi-input op whose inputs spread their channels differently (a flattened map plus features):
    it works per feature, so its inputs' channel spaces cannot be merged."""
    return len(node.inputs) > 1 and len({blocks[i] for i in node.inputs}) > 1


def find_channel_groups(graph: Graph) -> ChannelGroups:
    """Partition the node outputs of `graph` into channel groups (union-find over residual adds)."""
    uf = _UnionFind()
    blocks: dict[str, int] = {}
    channels: dict[str, int] = {}
    per_feature: list[Node] = []
    for node in graph.nodes:
        uf.add(node.name)
        mixed = _mixes_blocks(node, blocks)
        channels[node.name] = _channels_and_block(node, graph, blocks)
        if mixed:
            per_feature.append(node)
            continue
        passes_channels = node.op in CHANNEL_WISE_OPS or node.op in (Op.FLATTEN, Op.OUTPUT)
        if passes_channels:
            for source in node.inputs:
                uf.union(node.name, source)
    groups: dict[str, ChannelGroup] = {}
    group_of: dict[str, str] = {}
    for node in graph.nodes:
        key = uf.find(node.name)
        group = groups.setdefault(key, ChannelGroup(key, channels[node.name]))
        group.members[node.name] = blocks[node.name]
        group_of[node.name] = key
        if node.op in PRODUCER_OPS:
            group.producers.append(node.name)
        reason = _fixed_reason(node)
        if reason and group.fixed_reason is None:
            group.fixed_reason = reason
    for node in per_feature:
        for name in (node.name, *node.inputs):
            groups[group_of[name]].fixed_reason = f"'{node.name}' combines a flattened map with features"
    for node in graph.of_op(Op.CONV2D):
        if node.attrs.groups != 1:
            for name in (node.name, node.inputs[0]):
                groups[group_of[name]].fixed_reason = f"grouped convolution '{node.name}'"
    return ChannelGroups(groups, group_of)


def _fixed_reason(node: Node) -> str | None:
    if node.op is Op.INPUT:
        return "holds the graph input"
    if node.op is Op.OUTPUT:
        return "feeds the graph output"
    return None
