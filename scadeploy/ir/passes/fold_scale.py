"""fold_scale: merge each constant scale (x * c, OTTT's `Scale`) into the conv/linear layers that read it.

Requires: a verified graph.
Ensures: a `scale` node whose every reader is a conv/linear, directly or through (adaptive) average
pooling, flatten, the time mean, other scales and (for c >= 0) max pooling, is gone: those ops commute
with the scale (averages, flatten and the mean are linear; max(c x) = c max(x) for c >= 0, -inf padding
included), and each conv/linear reached gets w' = w * c (in float64), since W (c x) + b == (c W) x + b.
Outputs are equal up to float rounding, as for BN folding. Scales read by anything else stay
(ONNX lowers them as Mul; `unfolded_scales` names them for the backends that cannot).
"""

from __future__ import annotations

from scadeploy.ir.graph import Graph, Node, Op
from scadeploy.ir.ops import PRODUCER_OPS
from scadeploy.ir.passes.rename import rebuild
from scadeploy.ir.verify import verify

COMMUTES = (Op.AVGPOOL, Op.ADAPTIVE_AVGPOOL, Op.FLATTEN, Op.MEAN_OVER_TIME, Op.SCALE)


def scaled_producers(graph: Graph, scale: Node) -> list[Node] | None:
    """The conv/linear layers that read `scale` through ops that commute with it; None if another op reads it."""
    producers, stack = [], [scale.name]
    while stack:
        for reader in graph.consumers(stack.pop()):
            if reader.op in PRODUCER_OPS:
                producers.append(reader)
            elif reader.op in COMMUTES or (reader.op is Op.MAXPOOL and scale.attrs.factor >= 0):
                stack.append(reader.name)
            else:
                return None
    return producers


def unfolded_scales(graph: Graph) -> list[Node]:
    """Scales `fold_scale` cannot fold: something other than weights reads them."""
    return [n for n in graph.of_op(Op.SCALE) if scaled_producers(graph, n) is None]


def fold_scale(graph: Graph) -> Graph:
    """The graph with every foldable scale merged into the weights that read it (see the module docstring)."""
    replaced: dict[str, Node] = {}
    dropped: dict[str, str] = {}
    for scale in graph.of_op(Op.SCALE):
        producers = scaled_producers(graph, scale)
        if producers is None:
            continue
        for producer in producers:
            node = replaced.get(producer.name, producer)
            weight = node.params["weight"]
            weight = (weight.double() * scale.attrs.factor).to(weight.dtype)
            replaced[producer.name] = node.with_(params=dict(node.params) | {"weight": weight})
        dropped[scale.name] = scale.inputs[0]
    return verify(rebuild(graph, replaced, dropped)) if dropped else graph
