"""Max pooling of binary spikes as an OR layer: what Loihi and NIR compute instead of a max.

Requires: a max pool whose input is spikes (a neuron's, or another such pool's): 0/1 values.
Ensures: `or_layer` returns a conv `<pool>.or` with weight 1 on every window position of a channel
(same kernel, stride and padding) feeding an IF neuron named like the pool, threshold 1, reset 0.
The conv's output is a count >= 0, so v is 0 before every step and the neuron fires iff at least
one spike is in the window: exactly max(window), at every step. `grouped` makes the conv depthwise
(cheap on Loihi); ungrouped, each channel's kernel is 1 on its own channel only (for readers that
take no grouped convs, e.g. spikingjelly's NIR importer).
"""

from __future__ import annotations

import torch

from scadeploy.ir.graph import Conv2dAttrs, Graph, NeuronAttrs, NeuronKind, Node, Op
from scadeploy.ir.ops import infer_shape


def analog_maxpools(graph: Graph) -> list[Node]:
    """Max pools whose input is not spikes, where an OR is not a max."""
    return [n for n in graph.of_op(Op.MAXPOOL) if graph[n.inputs[0]].op not in (Op.NEURON, Op.MAXPOOL)]


def or_layer(pool: Node, in_shape: tuple[int, ...], grouped: bool) -> tuple[Node, Node]:
    """(conv, IF neuron) computing `pool` on spikes; see the module docstring."""
    c = in_shape[0]
    a = pool.attrs
    attrs = Conv2dAttrs(c, c, a.kernel_size, a.stride, a.padding, (1, 1), groups=c if grouped else 1, bias=False)
    if grouped:
        weight = torch.ones(c, 1, *a.kernel_size)
    else:
        weight = torch.zeros(c, c, *a.kernel_size)
        weight[torch.arange(c), torch.arange(c)] = 1.0
    conv = Node(f"{pool.name}.or", Op.CONV2D, pool.inputs, attrs, infer_shape(Op.CONV2D, attrs, [in_shape]),
                {"weight": weight})
    neuron = Node(pool.name, Op.NEURON, (conv.name,), NeuronAttrs(NeuronKind.IF, 1.0, 0.0), conv.shape)
    return conv, neuron
