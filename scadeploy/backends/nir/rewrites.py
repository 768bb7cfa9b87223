"""Exact IR rewrites into what NIR can express: no time mean in the graph, no max pooling, no products.

Requires: a verified, BN-folded graph.
Ensures: no `mean_over_time`, `maxpool`, `mul`, `complement` or `scale` node is left, and the graph
computes exactly what it computed before (the same spikes at every named neuron, the same logits;
folded scales up to float rounding):
- time mean: NIR has none (a readout's outputs are averaged outside the graph). A mean followed only
  by flatten/linear layers moves to the output, which every executor averages over time: a linear
  map commutes with the mean, bias included, so mean_t(W x_t + b) == W mean_t(x_t) + b.
- max pooling of binary spikes is an OR (`ir/passes/maxpool_as_or.py`), with an ungrouped conv so
  that every NIR importer takes it.
- products and complements of binary spikes (SEW ResNet's AND, IAND) are memoryless threshold neurons
  fed by ungrouped +-1 identity convs (`ir/passes/spike_logic.py`); NIR has no product of two signals.
- a constant scale folds into the conv/linear that reads it (`ir/passes/fold_scale.py`); spikingjelly's
  NIR importer has no Scale node.
`rewrite_problems` lists what cannot be rewritten.
"""

from __future__ import annotations

from functools import partial

from scadeploy.errors import UnsupportedError
from scadeploy.ir.graph import Graph, Node, Op
from scadeploy.ir.passes.fold_scale import fold_scale, unfolded_scales
from scadeploy.ir.passes.maxpool_as_or import analog_maxpools, or_layer
from scadeploy.ir.passes.pipeline import Pass, run_passes
from scadeploy.ir.passes.spike_logic import logic_problems, spike_logic
from scadeploy.ir.verify import verify

LINEAR_TAIL = (Op.LINEAR, Op.FLATTEN, Op.OUTPUT)


def rewrite_problems(graph: Graph) -> list[str]:
    """Every node these rewrites cannot express in NIR, with the reason."""
    problems = []
    for node in analog_maxpools(graph):
        problems.append(f"max pooling '{node.name}' reads analog values, not spikes (NIR has no max "
                        "pooling; only an OR of spikes is exact)")
    for node in graph.of_op(Op.MEAN_OVER_TIME):
        tail = graph.downstream(node.name)
        if any(n.op not in LINEAR_TAIL for n in tail):
            problems.append(f"the time mean '{node.name}' is followed by "
                            f"{sorted({n.op.value for n in tail} - {o.value for o in LINEAR_TAIL})}, so it cannot "
                            "move to the output (NIR has no time mean)")
    problems += [f"'{n.name}' has soft reset (NIR neurons reset to a value)"
                 for n in graph.of_op(Op.NEURON) if n.attrs.v_reset is None]
    problems += [f"scale '{n.name}' is read by something other than conv/linear weights it could fold into (NIR's "
                 "Scale node is not read by spikingjelly's importer)" for n in unfolded_scales(graph)]
    return problems + [f"{p} (NIR has no product of two signals)" for p in logic_problems(graph)]


PASSES = (Pass("fold_scale", fold_scale), Pass("spike_logic", partial(spike_logic, grouped=False)))


def rewrite_for_nir(graph: Graph) -> Graph:
    """Apply the rewrites of the module docstring; raise UnsupportedError listing what cannot be."""
    problems = rewrite_problems(graph)
    if problems:
        raise UnsupportedError("the model cannot be written as NIR: " + "; ".join(problems))
    graph = run_passes(graph, PASSES)
    alias: dict[str, str] = {}
    nodes: list[Node] = []
    for node in graph.nodes:
        node = node.with_(inputs=tuple(alias.get(i, i) for i in node.inputs))
        if node.op is Op.MEAN_OVER_TIME:
            alias[node.name] = node.inputs[0]
        elif node.op is Op.MAXPOOL:
            nodes += or_layer(node, graph[node.inputs[0]].shape, grouped=False)
        else:
            nodes.append(node)
    return verify(graph.with_nodes(nodes))
