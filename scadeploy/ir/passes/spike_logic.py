"""Products and complements of binary spikes as threshold neurons: what Loihi and NIR compute instead.

Requires: a verified graph in which every `mul` and `complement` reads binary spikes (`is_binary`:
a neuron's output, or max pooling, flatten, products and complements of spikes); `logic_problems`
names the others.
Ensures: `spike_logic` returns a graph without `mul` and `complement` nodes that computes exactly
the same value at every remaining node; each product or complement becomes a neuron with its name.
Each is a conjunction of k literals, a literal being a spike s (weight +1) or its complement 1 - s
(weight -1, +1 to the sum): the product is 1 iff every literal is 1, iff
    sum_i w_i s_i + (number of complements) >= k,
so `<node>.in<i>` (an identity synapse with weight w_i: a 1x1 conv, depthwise when `grouped`, or an
identity linear for features) feed, through the add `<node>.sum`, a memoryless neuron (`ir.neuron.memoryless`:
h = x, so it fires iff x >= threshold at every step, whatever came before) with threshold
k - complements, or threshold 1 and a bias 1 - (k - complements) where that would be below 1:
    AND  s * t        = [s + t >= 2]
    IAND s * (1 - t)  = [s - t >= 1]
    NOT  1 - t        = [1 - t >= 1]  (a complement read by anything but a product)
Every input of these neurons is a small integer, exact in any float and fixed-point arithmetic.
"""

from __future__ import annotations

import torch

from scadeploy.ir.graph import AddAttrs, Conv2dAttrs, Graph, LinearAttrs, Node, Op
from scadeploy.ir.neuron import memoryless
from scadeploy.ir.passes.rename import prune_unread
from scadeploy.ir.verify import verify

LOGIC_OPS = (Op.MUL, Op.COMPLEMENT)
SPIKES_THROUGH = (Op.MAXPOOL, Op.FLATTEN, Op.COMPLEMENT, Op.MUL)
Literal = tuple[str, bool]  # (spike source, complemented)


def is_binary(graph: Graph, name: str) -> bool:
    """True when the value is 0/1 at every step for every input: spikes, and what max pooling, flatten,
    products and complements make of spikes."""
    node = graph[name]
    if node.op is Op.NEURON:
        return True
    return node.op in SPIKES_THROUGH and all(is_binary(graph, i) for i in node.inputs)


def logic_problems(graph: Graph) -> list[str]:
    """Every product or complement that does not read binary spikes, with the reason it is not exact."""
    problems = []
    for node in graph.of_op(*LOGIC_OPS):
        analog = [i for i in node.inputs if not is_binary(graph, i)]
        if analog:
            what = "a product" if node.op is Op.MUL else "1 - x"
            problems.append(f"{node.op.value} '{node.name}' reads {', '.join(repr(a) for a in analog)}, which is "
                            f"not binary spikes: {what} of analog values has no exact form as weighted sums into "
                            "a threshold neuron (only AND/NOT of 0/1 spikes has)")
    return problems


def _literals(graph: Graph, node: Node) -> list[Literal]:
    if node.op is Op.COMPLEMENT:
        return [(node.inputs[0], True)]
    return [(graph[i].inputs[0], True) if graph[i].op is Op.COMPLEMENT else (i, False) for i in node.inputs]


def _synapse(name: str, source: Node, weight: float, bias: float, grouped: bool) -> Node:
    """An identity map times `weight` (plus `bias`) from `source`: 1x1 conv for maps, linear for features."""
    c = source.shape[0]
    has_bias = bias != 0.0
    params = {"bias": torch.full((c,), bias)} if has_bias else {}
    if len(source.shape) == 1:
        params["weight"] = torch.eye(c) * weight
        return Node(name, Op.LINEAR, (source.name,), LinearAttrs(c, c, has_bias), source.shape, params)
    if grouped:
        params["weight"] = torch.full((c, 1, 1, 1), weight)
    else:
        params["weight"] = (torch.eye(c) * weight).reshape(c, c, 1, 1)
    attrs = Conv2dAttrs(c, c, (1, 1), groups=c if grouped else 1, bias=has_bias)
    return Node(name, Op.CONV2D, (source.name,), attrs, source.shape, params)


def logic_layer(node: Node, literals: list[Literal], nodes: dict[str, Node], grouped: bool) -> list[Node]:
    """Synapses, their sum and the memoryless neuron computing the conjunction of `literals` (module docstring)."""
    margin = len(literals) - sum(negated for _, negated in literals)
    threshold = max(margin, 1)
    bias = float(threshold - margin)
    synapses = [_synapse(f"{node.name}.in{i}", nodes[source], -1.0 if negated else 1.0, bias if i == 0 else 0.0,
                         grouped) for i, (source, negated) in enumerate(literals)]
    out = synapses
    if len(synapses) > 1:
        out = [*synapses, Node(f"{node.name}.sum", Op.ADD, tuple(s.name for s in synapses), AddAttrs(), node.shape)]
    return [*out, Node(node.name, Op.NEURON, (out[-1].name,), memoryless(threshold), node.shape)]


def spike_logic(graph: Graph, grouped: bool) -> Graph:
    """Every product and complement as a threshold neuron (see the module docstring); a complement read
    only by products disappears into their literals."""
    if not graph.of_op(*LOGIC_OPS):
        return graph
    nodes: dict[str, Node] = {}
    for node in graph.nodes:
        if node.op in LOGIC_OPS:
            for new in logic_layer(node, _literals(graph, node), nodes, grouped):
                nodes[new.name] = new
        else:
            nodes[node.name] = node
    return verify(prune_unread(graph.with_nodes(list(nodes.values()))))
