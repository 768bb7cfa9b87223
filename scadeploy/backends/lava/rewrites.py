"""Exact IR rewrites that remove what netx and Loihi cannot express: pooling, spike logic, sums read by
weights, identity shortcuts.

Requires: a verified, BN-folded graph.
Ensures: no `maxpool`/`avgpool`/`mul`/`complement`/`scale` node is left, every `add` input is a
conv/linear, and every conv/linear reads spikes or the input; the graph computes exactly what it
computed before (same spikes at every named neuron):
- a constant scale folds into the conv/linear that reads it (`ir/passes/fold_scale.py`).
- products and complements of binary spikes (SEW ResNet's AND, IAND) are memoryless threshold
  neurons fed by +-1 identity synapses (`ir/passes/spike_logic.py`); on Loihi such a neuron is a
  CUBA neuron with full current and voltage decay (iDecay = vDecay = 4096), exact.
- a conv/linear reading a sum of spike maps (SEW ResNet's ADD) reads each map instead, its copies
  summed into the neuron it drives (`ir/passes/distribute_sums.py`), so every synapse carries 0/1 spikes.
- max pooling of binary spikes is an OR (`ir/passes/maxpool_as_or.py`): a depthwise all-ones conv
  `<pool>.or` feeding an IF neuron with threshold 1 and reset 0 that keeps the pool's name.
- average pooling (kernel == stride, no padding) folds into the conv or flatten->linear that reads it:
  conv(avgpool_k(x), w, S, P) == conv(x, kron(w, ones(k)) / k^2, k*S, k*P) when k divides H and W;
  linear(flatten(avgpool_k(x))) uses W'[o, c, h, w] = W[o, c, h // k, w // k] / k^2.
- an `add` input that is not a conv/linear (an identity shortcut) goes through `<add>.identity<i>`, a
  1x1 depthwise conv with weight 1, so every synaptic path into a neuron carries weights.
- a per-step head (a final linear whose per-step outputs the executors average over time, with no
  `mean_over_time` in the graph) reads `<linear>.mean`, a time mean inserted before it: a linear
  map commutes with the mean, bias included, so mean_t(W x_t + b) == W mean_t(x_t) + b, and the
  head becomes the one readout integrator Loihi has.
`rewrite_problems` lists what cannot be rewritten, for `check_supported`.
"""

from __future__ import annotations

from functools import partial

import torch

from scadeploy.errors import UnsupportedError
from scadeploy.ir.graph import Conv2dAttrs, FlattenAttrs, Graph, LinearAttrs, MeanOverTimeAttrs, Node, Op
from scadeploy.ir.ops import PRODUCER_OPS, infer_shape
from scadeploy.ir.passes.distribute_sums import distribute_sums
from scadeploy.ir.passes.fold_scale import fold_scale, unfolded_scales
from scadeploy.ir.passes.maxpool_as_or import analog_maxpools, or_layer
from scadeploy.ir.passes.pipeline import Pass, run_passes
from scadeploy.ir.passes.spike_logic import logic_problems, spike_logic
from scadeploy.ir.verify import verify


def mean_before_head(graph: Graph) -> Graph:
    """Move the time mean of a per-step linear head before the linear (exact; see the module docstring)."""
    head = graph[graph.output.inputs[0]]
    if head.op is not Op.LINEAR or graph.of_op(Op.MEAN_OVER_TIME):
        return graph
    mean = Node(f"{head.name}.mean", Op.MEAN_OVER_TIME, head.inputs, MeanOverTimeAttrs(), graph[head.inputs[0]].shape)
    nodes = []
    for node in graph.nodes:
        if node is head:
            nodes += [mean, head.with_(inputs=(mean.name,))]
        else:
            nodes.append(node)
    return verify(graph.with_nodes(nodes))


def _element_wise_problems(graph: Graph) -> list[str]:
    """Scales that cannot fold and products/complements of analog values, with Loihi's reason."""
    problems = [f"scale '{n.name}' is read by something other than conv/linear weights it could fold into "
                "(Loihi multiplies only at synapses)" for n in unfolded_scales(graph)]
    return problems + [f"{p} (a Loihi neuron only sums weighted spikes)" for p in logic_problems(graph)]


SYNAPTIC_PASSES = (Pass("fold_scale", fold_scale), Pass("mean_before_head", mean_before_head),
                   Pass("spike_logic", partial(spike_logic, grouped=True)), Pass("distribute_sums", distribute_sums))


def _synaptic(graph: Graph) -> Graph:
    """Scales folded, the head's time mean moved, spike logic as neurons, sums distributed (module docstring)."""
    return run_passes(graph, SYNAPTIC_PASSES)


def rewrite_problems(graph: Graph) -> list[str]:
    """Every node these rewrites cannot express, with the reason."""
    problems = _element_wise_problems(graph)
    if problems:
        return problems
    graph = _synaptic(graph)
    for node in analog_maxpools(graph):
        problems.append(f"max pooling '{node.name}' reads analog values, not spikes (only an OR of spikes "
                        "is exact on Loihi)")
    for node in graph.of_op(Op.AVGPOOL):
        a = node.attrs
        if a.kernel_size != a.stride or a.padding != (0, 0):
            problems.append(f"average pooling '{node.name}' needs kernel == stride and no padding to fold")
            continue
        for reader in graph.consumers(node.name):
            reason = _avg_fold_problem(graph, node, reader)
            if reason:
                problems.append(f"average pooling '{node.name}' cannot fold into '{reader.name}': {reason}")
    return problems


def _avg_fold_problem(graph: Graph, pool: Node, reader: Node) -> str | None:
    kh, kw = pool.attrs.kernel_size
    _, h, w = graph[pool.inputs[0]].shape
    if reader.op is Op.CONV2D:
        if reader.attrs.dilation != (1, 1):
            return "the conv is dilated"
        if h % kh or w % kw:
            return f"the {h}x{w} map is not divisible by the {kh}x{kw} window"
        return None
    if reader.op is Op.FLATTEN:
        for nxt in graph.consumers(reader.name):
            chain = graph.consumers(nxt.name) if nxt.op is Op.MEAN_OVER_TIME else [nxt]
            if any(n.op is not Op.LINEAR for n in chain):
                return "the flattened pool must feed linear layers only"
        return None
    return f"it feeds a {reader.op.value}, not a conv or flatten->linear"


def rewrite_for_lava(graph: Graph) -> Graph:
    """Apply the rewrites of the module docstring; raise UnsupportedError listing what cannot be."""
    problems = rewrite_problems(graph)
    if problems:
        raise UnsupportedError("the model cannot be lowered to Lava: " + "; ".join(problems))
    graph = _synaptic(graph)
    nodes: dict[str, Node] = {}
    for node in graph.nodes:
        if node.op is Op.MAXPOOL:
            conv, neuron = or_layer(node, nodes[node.inputs[0]].shape, grouped=True)
            nodes[conv.name], nodes[neuron.name] = conv, neuron
        elif node.op is Op.AVGPOOL:
            continue  # folded into its readers below
        elif node.op is Op.ADD:
            nodes.update(_identity_shortcuts(node, nodes))
        elif node.inputs and graph[node.inputs[0]].op is Op.AVGPOOL:
            nodes.update(_fold_avgpool(graph, graph[node.inputs[0]], node, nodes))
        elif node.op is Op.LINEAR and _pooled_flatten(graph, node) is not None:
            nodes[node.name] = _fold_avgpool_linear(graph, node, nodes)
        else:
            nodes[node.name] = node
    return verify(graph.with_nodes(_reshaped(list(nodes.values()))))


def _reshaped(nodes: list[Node]) -> list[Node]:
    """Re-derive every shape from the shape rules (a folded pool widens the flatten and what follows)."""
    shapes: dict[str, tuple[int, ...]] = {}
    out = []
    for node in nodes:
        if node.op is not Op.INPUT:
            node = node.with_(shape=infer_shape(node.op, node.attrs, [shapes[i] for i in node.inputs]))
        shapes[node.name] = node.shape
        out.append(node)
    return out


def _identity_shortcuts(add: Node, nodes: dict[str, Node]) -> dict[str, Node]:
    out: dict[str, Node] = {}
    inputs = []
    for i, name in enumerate(add.inputs):
        source = nodes[name]
        if source.op in PRODUCER_OPS:
            inputs.append(name)
            continue
        c = source.shape[0]
        if len(source.shape) == 3:
            attrs = Conv2dAttrs(c, c, (1, 1), groups=c)
            node = Node(f"{add.name}.identity{i}", Op.CONV2D, (name,), attrs, source.shape,
                        {"weight": torch.ones(c, 1, 1, 1)})
        else:
            node = Node(f"{add.name}.identity{i}", Op.LINEAR, (name,), LinearAttrs(c, c), source.shape,
                        {"weight": torch.eye(c)})
        out[node.name] = node
        inputs.append(node.name)
    out[add.name] = add.with_(inputs=tuple(inputs))
    return out


def _fold_avgpool(graph: Graph, pool: Node, reader: Node, nodes: dict[str, Node]) -> dict[str, Node]:
    """A conv or flatten reading an average pool, rewritten to read the pool's input."""
    source = pool.inputs[0]
    if reader.op is Op.FLATTEN:
        return {reader.name: Node(reader.name, Op.FLATTEN, (source,), FlattenAttrs(),
                                  infer_shape(Op.FLATTEN, reader.attrs, [nodes[source].shape]))}
    kh, kw = pool.attrs.kernel_size
    a = reader.attrs
    weight = torch.kron(reader.params["weight"].double(), torch.ones(1, 1, kh, kw, dtype=torch.float64)) / (kh * kw)
    attrs = Conv2dAttrs(a.in_channels, a.out_channels, (a.kernel_size[0] * kh, a.kernel_size[1] * kw),
                        (a.stride[0] * kh, a.stride[1] * kw), (a.padding[0] * kh, a.padding[1] * kw),
                        (1, 1), a.groups, a.bias)
    params = dict(reader.params) | {"weight": weight.float()}
    shape = infer_shape(Op.CONV2D, attrs, [nodes[source].shape])
    if shape != reader.shape:
        raise UnsupportedError(f"folding average pooling '{pool.name}' into '{reader.name}' changes its shape")
    return {reader.name: reader.with_(inputs=(source,), attrs=attrs, params=params)}


def _pooled_flatten(graph: Graph, linear: Node) -> Node | None:
    """The average pool behind `linear`'s flatten (through an optional mean_over_time), if any."""
    node = graph[linear.inputs[0]]
    if node.op is Op.MEAN_OVER_TIME:
        node = graph[node.inputs[0]]
    if node.op is not Op.FLATTEN:
        return None
    pool = graph[node.inputs[0]]
    return pool if pool.op is Op.AVGPOOL else None


def _fold_avgpool_linear(graph: Graph, linear: Node, nodes: dict[str, Node]) -> Node:
    """W'[o, c, h, w] = W[o, c, h // kh, w // kw] / (kh * kw); rows beyond the pooled grid get 0."""
    pool = _pooled_flatten(graph, linear)
    c, h, w = graph[pool.inputs[0]].shape
    _, ph, pw = pool.shape
    kh, kw = pool.attrs.kernel_size
    weight = linear.params["weight"].double().reshape(-1, c, ph, pw)
    weight = weight.repeat_interleave(kh, dim=2).repeat_interleave(kw, dim=3) / (kh * kw)
    full = torch.zeros(weight.shape[0], c, h, w, dtype=torch.float64)
    full[:, :, : ph * kh, : pw * kw] = weight
    attrs = LinearAttrs(c * h * w, linear.attrs.out_features, linear.attrs.bias)
    params = dict(linear.params) | {"weight": full.reshape(weight.shape[0], -1).float()}
    return linear.with_(attrs=attrs, params=params)
