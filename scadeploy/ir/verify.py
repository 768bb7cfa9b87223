"""The IR verifier: run after the frontend, after every pass and on load.

Checks known ops with matching attribute types, unique names, inputs defined before use,
one input and one output, stored shapes equal to the shape rules, parameter shapes that fit the
attributes, and no time-dependent op after `mean_over_time`.
"""

from __future__ import annotations

from scadeploy.errors import GraphError
from scadeploy.ir.graph import Graph, Node, Op
from scadeploy.ir.ops import ATTRS_OF_OP, expected_param_shapes, infer_shape


def verify(graph: Graph) -> Graph:
    """Raise GraphError naming the first broken node; return the graph unchanged otherwise."""
    seen: dict[str, Node] = {}
    timed = True
    for node in graph.nodes:
        where = f"node '{node.name}' ({node.op.value})"
        if not isinstance(node.op, Op) or not isinstance(node.attrs, ATTRS_OF_OP[node.op]):
            raise GraphError(f"{where}: attributes {type(node.attrs).__name__} do not fit the op")
        if node.name in seen:
            raise GraphError(f"{where}: duplicate node name")
        missing = [i for i in node.inputs if i not in seen]
        if missing:
            raise GraphError(f"{where}: inputs {missing} are not defined before use")
        if node.op is Op.INPUT:
            if node.inputs:
                raise GraphError(f"{where}: an input node takes no inputs")
        else:
            if not node.inputs:
                raise GraphError(f"{where}: needs at least one input")
            expected = infer_shape(node.op, node.attrs, [seen[i].shape for i in node.inputs])
            if tuple(expected) != tuple(node.shape):
                raise GraphError(f"{where}: stored shape {node.shape}, shape rule gives {expected}")
        wanted = expected_param_shapes(node)
        got = {k: tuple(v.shape) for k, v in node.params.items()}
        if got != wanted:
            raise GraphError(f"{where}: parameters {got}, expected {wanted}")
        if node.op is Op.NEURON and not timed:
            raise GraphError(f"{where}: a neuron after mean_over_time has no time axis")
        if node.op is Op.MEAN_OVER_TIME:
            timed = False
        seen[node.name] = node
    for op in (Op.INPUT, Op.OUTPUT):
        count = sum(n.op is op for n in graph.nodes)
        if count != 1:
            raise GraphError(f"the graph has {count} {op.value} nodes, expected exactly one")
    if graph.nodes[-1].op is not Op.OUTPUT:
        raise GraphError("the output node must be the last node")
    if graph.timesteps < 1:
        raise GraphError(f"timesteps must be >= 1, got {graph.timesteps}")
    return graph
