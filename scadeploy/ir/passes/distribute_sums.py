"""distribute_sums: weights that read a sum of spike maps read each map instead (SEW ResNet's ADD on Loihi).

Requires: a verified graph.
Ensures: no conv/linear reads an `add` whose terms are all binary spikes (`spike_logic.is_binary`),
directly or through average pooling, flatten and the time mean (the `chain`). The terms of an add
are its inputs with nested adds replaced by their own terms (add(add(a, b), c) sums a, b, c). Such a
conv/linear P becomes P.term<i> reading chain.term<i>(t_i) for every term t_i, and an add named P
sums them, because the weights, average pooling, flatten and the time mean are linear:
    P(chain(t_1 + ... + t_k)) = P_1(chain_1(t_1)) + ... + P_k(chain_k(t_k)),
with P's bias on P.term0 only, so it is counted once. Each weight layer then reads binary spikes,
and a neuron reading P reads an add of weight layers (the synapse paths Loihi sums). An add whose
input is another add then sums that add's terms directly. Nodes nothing reads any more are dropped.
Exact in integer arithmetic (the quantized graph); in float up to the order of the additions.
"""

from __future__ import annotations

import dataclasses

from scadeploy.ir.graph import AddAttrs, Graph, Node, Op
from scadeploy.ir.ops import PRODUCER_OPS
from scadeploy.ir.passes.rename import prune_unread
from scadeploy.ir.passes.spike_logic import is_binary
from scadeploy.ir.verify import verify

CHAIN = (Op.AVGPOOL, Op.FLATTEN, Op.MEAN_OVER_TIME)


def terms(graph: Graph, name: str) -> list[str]:
    """The non-add nodes a value is the sum of (an add's inputs, nested adds expanded)."""
    node = graph[name]
    if node.op is not Op.ADD:
        return [name]
    return [t for i in node.inputs for t in terms(graph, i)]


def _summed_chain(graph: Graph, producer: Node) -> tuple[Node, list[Node]] | None:
    """(the add of spikes, the chain from it to `producer`, in order) when `producer` reads one."""
    chain: list[Node] = []
    node = graph[producer.inputs[0]]
    while node.op in CHAIN:
        chain.insert(0, node)
        node = graph[node.inputs[0]]
    if node.op is not Op.ADD or not all(is_binary(graph, t) for t in terms(graph, node.name)):
        return None
    return node, chain


def _distributed(graph: Graph, producer: Node, add: Node, chain: list[Node], nodes: dict[str, Node]) -> None:
    """Add P.term<i> (and the chain copies it reads) for every term, and the add named P, to `nodes`."""
    parts = []
    for i, term in enumerate(terms(graph, add.name)):
        source = term
        for link in chain:
            copy = link.with_(name=f"{link.name}.term{i}", inputs=(source,))
            nodes.setdefault(copy.name, copy)
            source = copy.name
        params = dict(producer.params)
        attrs = producer.attrs
        if i > 0 and "bias" in params:
            del params["bias"]
            attrs = dataclasses.replace(attrs, bias=False)
        part = producer.with_(name=f"{producer.name}.term{i}", inputs=(source,), attrs=attrs, params=params)
        nodes[part.name] = part
        parts.append(part.name)
    nodes[producer.name] = Node(producer.name, Op.ADD, tuple(parts), AddAttrs(), producer.shape)


def _flattened(graph: Graph) -> Graph:
    """Every add reads the terms of the adds it reads (add(add(a, b), c) -> add(a, b, c))."""
    nodes = [n.with_(inputs=tuple(terms(graph, n.name))) if n.op is Op.ADD else n for n in graph.nodes]
    return graph.with_nodes(nodes)


def distribute_sums(graph: Graph) -> Graph:
    """Apply the rewrite of the module docstring; a graph without such weights comes back unchanged."""
    nodes: dict[str, Node] = {}
    changed = False
    for node in graph.nodes:
        found = _summed_chain(graph, node) if node.op in PRODUCER_OPS else None
        if found is None:
            nodes[node.name] = node
            continue
        _distributed(graph, node, *found, nodes)
        changed = True
    if not changed:
        return graph
    return verify(prune_unread(_flattened(graph.with_nodes(list(nodes.values())))))
