"""Shared plumbing for passes: rebuild a graph while dropping nodes and redirecting their readers, and drop
what a rewrite left unread."""

from __future__ import annotations

from collections.abc import Mapping

from scadeploy.ir.graph import Graph, Node, Op


def rebuild(graph: Graph, replaced: Mapping[str, Node], dropped: Mapping[str, str]) -> Graph:
    """Copy the graph with `replaced` nodes swapped in and `dropped` nodes removed.

    `dropped` maps a removed node to the node its readers should read instead.
    """

    def resolve(name: str) -> str:
        while name in dropped:
            name = dropped[name]
        return name

    nodes = []
    for node in graph.nodes:
        if node.name in dropped:
            continue
        node = replaced.get(node.name, node)
        nodes.append(node.with_(inputs=tuple(resolve(i) for i in node.inputs)))
    return graph.with_nodes(nodes)


def prune_unread(graph: Graph) -> Graph:
    """The graph without the nodes the output does not depend on (the input always stays)."""
    needed, stack = set(), [graph.output.name]
    while stack:
        name = stack.pop()
        if name not in needed:
            needed.add(name)
            stack.extend(graph[name].inputs)
    return graph.with_nodes([n for n in graph.nodes if n.name in needed or n.op is Op.INPUT])
