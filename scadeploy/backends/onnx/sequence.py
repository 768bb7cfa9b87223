"""The default ONNX layout: the whole fixed-T sequence in one graph, no Loop/Scan.

Every value is one of three kinds:
- static  `[N, ...]`: a direct-encoded frame and the layers before the first neuron, which
  therefore run once instead of T times;
- folded  `[T*N, ...]`: a time-major sequence with T folded into the batch, so conv/linear/pool
  run once on T*N frames (row t*N + n is step t of sample n);
- untimed `[N, ...]`: after the mean over time.
Neurons split a folded input into T steps (`Split` into equal parts), unroll the update as
element-wise ops and concatenate the spikes back into a folded tensor. The batch is dynamic.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import onnx

from scadeploy.backends.onnx.ops import (
    COMBINING_OPS,
    STATELESS_OPS,
    OnnxBuilder,
    combine,
    neuron_step,
    spikes,
    stateless,
    tensor_info,
)
from scadeploy.ir.graph import Encoding, Graph, Node, Op

BATCH = "N"
LOGITS = "logits"


class Kind(enum.Enum):
    STATIC = "static"
    FOLDED = "folded"
    UNTIMED = "untimed"


@dataclass(frozen=True)
class Value:
    name: str
    kind: Kind


def _steps(b: OnnxBuilder, name: str, x: Value, timesteps: int) -> list[str]:
    """The per-step tensors `[N, ...]` of a static or folded value."""
    if x.kind is Kind.STATIC:
        return [x.name] * timesteps
    if timesteps == 1:
        return [x.name]
    outputs = [f"{name}.t{t}.x" for t in range(timesteps)]
    attrs = {"num_outputs": timesteps} if b.opset >= 18 else {}
    return b.op_multi("Split", [x.name], outputs, f"{name}.split", axis=0, **attrs)


def _neuron(b: OnnxBuilder, node: Node, x: Value, timesteps: int) -> Value:
    """Unrolled neuron: T steps from the reset state; the last step needs no new v."""
    v = None
    silent = []
    for t, x_t in enumerate(_steps(b, node.name, x, timesteps)):
        s, v = neuron_step(b, node.name, node.attrs, x_t, v, f"{node.name}.t{t}", want_v=t < timesteps - 1)
        silent.append(s)
    if timesteps > 1:
        silent = [b.op("Concat", silent, f"{node.name}.silent", axis=0)]
    return Value(spikes(b, silent[0], node.name), Kind.FOLDED)


def _time_mean(b: OnnxBuilder, node: Node, x: Value, source_shape: tuple[int, ...], timesteps: int) -> str:
    """[T*N, ...] -> [N, ...]: view as [T, N, ...] and average over axis 0."""
    if x.kind is not Kind.FOLDED:
        return b.op("Identity", [x.name], node.name)
    shape = b.const(f"{node.name}.time_major_shape", [timesteps, -1, *source_shape])
    time_major = b.op("Reshape", [x.name, shape], f"{node.name}.time_major")
    if b.opset >= 18:
        axes = b.const(f"{node.name}.axes", [0])
        return b.op("ReduceMean", [time_major, axes], node.name, keepdims=0)
    return b.op("ReduceMean", [time_major], node.name, axes=[0], keepdims=0)


def _combine(b: OnnxBuilder, node: Node, args: list[Value], timesteps: int) -> Value:
    """An add or product of several values; a static frame meeting a sequence is repeated T times."""
    kinds = {a.kind for a in args}
    names = [a.name for a in args]
    if kinds == {Kind.STATIC, Kind.FOLDED}:  # a static frame meets a sequence: repeat it T times
        names = [b.op("Concat", [a.name] * timesteps, f"{node.name}.{a.name}.repeat", axis=0)
                 if a.kind is Kind.STATIC else a.name for a in args]
        kind = Kind.FOLDED
    else:
        (kind,) = kinds
    return Value(combine(b, node, names), kind)


def build_sequence_model(graph: Graph, opset: int, expose_spikes: bool = False) -> onnx.ModelProto:
    """The unrolled ONNX model: input `[N, *shape]` (or `[T, N, *shape]`) -> logits `[N, K]`.

    With `expose_spikes`, every neuron's folded spikes `[T*N, ...]` are extra outputs (for parity).
    """
    b = OnnxBuilder(opset)
    inp = graph.input
    t = graph.timesteps
    if inp.attrs.encoding is Encoding.DIRECT:
        inputs = [tensor_info(inp.name, [BATCH, *inp.shape])]
        values = {inp.name: Value(inp.name, Kind.STATIC)}
    else:
        inputs = [tensor_info(inp.name, [t, BATCH, *inp.shape])]
        shape = b.const(f"{inp.name}.folded_shape", [-1, *inp.shape])
        values = {inp.name: Value(b.op("Reshape", [inp.name, shape], f"{inp.name}.folded"), Kind.FOLDED)}
    for node in graph.nodes[1:]:
        args = [values[i] for i in node.inputs]
        if node.op in STATELESS_OPS:
            values[node.name] = Value(stateless(b, node, args[0].name), args[0].kind)
        elif node.op is Op.NEURON:
            values[node.name] = _neuron(b, node, args[0], t)
        elif node.op in COMBINING_OPS:
            values[node.name] = _combine(b, node, args, t)
        elif node.op is Op.MEAN_OVER_TIME:
            source = graph[node.inputs[0]].shape
            values[node.name] = Value(_time_mean(b, node, args[0], source, t), Kind.UNTIMED)
        elif node.op is Op.OUTPUT:
            source = graph[node.inputs[0]].shape
            mean = _time_mean(b, node.with_(name=f"{node.name}.mean"), args[0], source, t)
            b.op("Identity", [mean], LOGITS)
    outputs = [tensor_info(LOGITS, [BATCH, *graph.output.shape])]
    if expose_spikes:
        outputs += [tensor_info(n.name, [None, *n.shape]) for n in graph.of_op(Op.NEURON)]
    doc = f"scadeploy sequence layout: T={t} unrolled, T folded into the batch for stateless ops"
    return b.model("scadeploy_sequence", inputs, outputs, doc)
