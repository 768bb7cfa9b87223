"""The torch reference executor: an interpreter over the IR, the oracle for every other backend.

Values are `[T, N, ...]` tensors, except that a direct-encoded input and everything computed
from it before the first neuron stays one static `[N, ...]` frame (the same at every step), so
the first layers run once instead of T times. Runs in any float dtype; float64 removes
summation-order ties when two graphs that should agree are compared.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from scadeploy.ir.graph import Encoding, Graph, Node, Op
from scadeploy.ir.neuron import run_neuron


@dataclass
class Value:
    tensor: torch.Tensor
    static: bool  # True: one [N, ...] frame shared by every step; False: [T, N, ...] (or untimed)
    timed: bool = True


@dataclass
class RunResult:
    """Logits `[N, classes]` and, when recorded, each neuron's spikes `[T, N, ...]`."""

    logits: torch.Tensor
    spikes: dict[str, torch.Tensor] = field(default_factory=dict)


def _per_frame(fn: Callable[[torch.Tensor], torch.Tensor], value: Value) -> Value:
    """Apply a stateless op to every frame, folding T into the batch (one call on T*N)."""
    t = value.tensor
    if value.static or not value.timed:
        return Value(fn(t), value.static, value.timed)
    out = fn(t.flatten(0, 1))
    return Value(out.reshape(t.shape[0], t.shape[1], *out.shape[1:]), False)


def apply_node(node: Node, args: list[Value], timesteps: int, params: dict[str, torch.Tensor]) -> Value:
    a = node.attrs
    op = node.op
    if op is Op.CONV2D:
        return _per_frame(
            lambda t: F.conv2d(t, params["weight"], params.get("bias"), a.stride, a.padding, a.dilation, a.groups),
            args[0],
        )
    if op is Op.LINEAR:
        return _per_frame(lambda t: F.linear(t, params["weight"], params.get("bias")), args[0])
    if op is Op.BATCHNORM:
        return _per_frame(
            lambda t: F.batch_norm(
                t, params["running_mean"], params["running_var"], params["weight"], params["bias"], False, 0.0, a.eps
            ),
            args[0],
        )
    if op is Op.MAXPOOL:
        return _per_frame(lambda t: F.max_pool2d(t, a.kernel_size, a.stride, a.padding), args[0])
    if op is Op.AVGPOOL:
        return _per_frame(lambda t: F.avg_pool2d(t, a.kernel_size, a.stride, a.padding), args[0])
    if op is Op.FLATTEN:
        return _per_frame(lambda t: t.flatten(1), args[0])
    if op is Op.NEURON:
        x = args[0]
        seq = x.tensor.expand(timesteps, *x.tensor.shape) if x.static else x.tensor
        return Value(run_neuron(a, seq), False)
    if op is Op.ADD:
        if all(v.static for v in args):
            return Value(sum(v.tensor for v in args), True)
        return Value(sum(v.tensor for v in args), False, args[0].timed)
    if op is Op.MEAN_OVER_TIME:
        x = args[0]
        return Value(x.tensor if x.static else x.tensor.mean(0), False, timed=False)
    if op is Op.OUTPUT:
        x = args[0]
        return Value(x.tensor if (x.static or not x.timed) else x.tensor.mean(0), False, timed=False)
    raise NotImplementedError(f"torch_ref has no rule for op {op.value}")  # verify() rules this out


Observer = Callable[[Node, list[Value]], None]


def run_graph(
    graph: Graph, x: torch.Tensor, *, record: bool = False, dtype: torch.dtype = torch.float32,
    observe: Observer | None = None,
) -> RunResult:
    """Run the graph on `x` (`[N, ...]` for direct encoding, `[T, N, ...]` for a sequence).

    `observe(node, input_values)` is called before each node runs, e.g. to count synaptic operations.
    """
    inp = graph.input
    static = inp.attrs.encoding is Encoding.DIRECT
    values: dict[str, Value] = {inp.name: Value(x.to(dtype), static)}
    spikes: dict[str, torch.Tensor] = {}
    last_use = {name: i for i, n in enumerate(graph.nodes) for name in n.inputs}
    with torch.no_grad():
        for i, node in enumerate(graph.nodes[1:], start=1):
            args = [values[n] for n in node.inputs]
            if observe is not None:
                observe(node, args)
            params = {k: p.to(dtype=dtype, device=x.device) for k, p in node.params.items()}
            values[node.name] = apply_node(node, args, graph.timesteps, params)
            if record and node.op is Op.NEURON:
                spikes[node.name] = values[node.name].tensor
            for name in node.inputs:
                if last_use[name] == i:
                    del values[name]
    return RunResult(values[graph.output.name].tensor, spikes)

