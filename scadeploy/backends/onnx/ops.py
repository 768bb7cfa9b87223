"""Shared ONNX building blocks: a small graph builder and one lowering per IR op.

Both ONNX layouts (sequence and step) are built from these pieces, so the neuron update and
every stateless op are written once. Names follow the IR: a layer's output tensor is the layer's
name, and helper tensors extend it (`features.sn1.t0.v`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from scadeploy.errors import GraphError
from scadeploy.ir.graph import NeuronAttrs, NeuronKind, Node, Op
from scadeploy.ir.ops import BackendOps


@dataclass
class OnnxBuilder:
    """Collects nodes and initializers with unique names; `model()` assembles and checks them."""

    opset: int
    nodes: list[onnx.NodeProto] = field(default_factory=list)
    initializers: dict[str, onnx.TensorProto] = field(default_factory=dict)
    _names: set[str] = field(default_factory=set)

    def _claim(self, name: str) -> str:
        if name in self._names:
            raise GraphError(f"ONNX name '{name}' is produced twice", "IR node names must be unique")
        self._names.add(name)
        return name

    def const(self, name: str, value: np.ndarray | float | list[int]) -> str:
        """An initializer; scalars become float32 0-d tensors, int lists int64 vectors."""
        if name in self.initializers:
            return name
        if isinstance(value, float):
            array = np.array(value, dtype=np.float32)
        elif isinstance(value, list):
            array = np.array(value, dtype=np.int64)
        else:
            array = np.ascontiguousarray(value)
        self.initializers[self._claim(name)] = numpy_helper.from_array(array, name)
        return name

    def op(self, op_type: str, inputs: list[str], output: str, **attrs: object) -> str:
        """Append one node whose single output (and node name) is `output`."""
        self.nodes.append(helper.make_node(op_type, inputs, [self._claim(output)], name=output, **attrs))
        return output

    def op_multi(self, op_type: str, inputs: list[str], outputs: list[str], name: str, **attrs: object) -> list[str]:
        outputs = [self._claim(o) for o in outputs]
        self.nodes.append(helper.make_node(op_type, inputs, outputs, name=self._claim(name), **attrs))
        return outputs

    def model(self, name: str, inputs: list[onnx.ValueInfoProto], outputs: list[onnx.ValueInfoProto],
              doc: str) -> onnx.ModelProto:
        graph = helper.make_graph(self.nodes, name, inputs, outputs, list(self.initializers.values()))
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", self.opset)],
                                  producer_name="scadeploy", doc_string=doc)
        model.ir_version = min(model.ir_version, 10)  # readable by every onnxruntime that knows opset 21
        onnx.checker.check_model(model, full_check=True)
        return onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)


def tensor_info(name: str, dims: list[int | str | None]) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, dims)


ONNX_OPS = BackendOps("onnx")
"""The ONNX lowering of every IR op; the stateless ones are functions `(builder, node, x) -> output`
that work on any leading batch (N, or T*N folded); both layouts (sequence, step) use them."""


def _conv_or_linear_inputs(b: OnnxBuilder, node: Node, x: str) -> list[str]:
    inputs = [x, b.const(f"{node.name}.weight", node.params["weight"].numpy())]
    if "bias" in node.params:
        inputs.append(b.const(f"{node.name}.bias", node.params["bias"].numpy()))
    return inputs


@ONNX_OPS.lowers(Op.CONV2D, how="Conv")
def _conv(b: OnnxBuilder, node: Node, x: str) -> str:
    a = node.attrs
    return b.op("Conv", _conv_or_linear_inputs(b, node, x), node.name, kernel_shape=list(a.kernel_size),
                strides=list(a.stride), pads=[*a.padding, *a.padding], dilations=list(a.dilation), group=a.groups)


@ONNX_OPS.lowers(Op.LINEAR, how="Gemm")
def _linear(b: OnnxBuilder, node: Node, x: str) -> str:
    return b.op("Gemm", _conv_or_linear_inputs(b, node, x), node.name, transB=1)


@ONNX_OPS.lowers(Op.MAXPOOL, how="MaxPool")
def _maxpool(b: OnnxBuilder, node: Node, x: str) -> str:
    a = node.attrs
    return b.op("MaxPool", [x], node.name, kernel_shape=list(a.kernel_size), strides=list(a.stride),
                pads=[*a.padding, *a.padding])


@ONNX_OPS.lowers(Op.AVGPOOL, how="AveragePool (count_include_pad)")
def _avgpool(b: OnnxBuilder, node: Node, x: str) -> str:
    a = node.attrs
    return b.op("AveragePool", [x], node.name, kernel_shape=list(a.kernel_size), strides=list(a.stride),
                pads=[*a.padding, *a.padding], count_include_pad=1)


@ONNX_OPS.lowers(Op.FLATTEN, how="Flatten")
def _flatten(b: OnnxBuilder, node: Node, x: str) -> str:
    return b.op("Flatten", [x], node.name, axis=1)


ONNX_OPS.lower(Op.INPUT, "graph input (frames, or [T, N, ...] folded to [T*N, ...])")
ONNX_OPS.refuse(Op.BATCHNORM, "batch norm must fold into the conv/linear before it (compile folds each one that "
                "directly follows a conv/linear)")
ONNX_OPS.refuse(Op.ADAPTIVE_AVGPOOL, "it has no fixed window; compile folds it into the flatten -> linear "
                "that reads it, and this one feeds something else")
ONNX_OPS.lower(Op.NEURON, "Add/Sub/Div, Less, Cast per step (unrolled, or one step with state)")
ONNX_OPS.lower(Op.ADD, "Add")
ONNX_OPS.lower(Op.MUL, "Mul")
COMBINING_OPS = {Op.ADD: "Add", Op.MUL: "Mul"}
"""Element-wise ops of several inputs, as the ONNX op that combines them pairwise, left to right."""


@ONNX_OPS.lowers(Op.COMPLEMENT, how="Sub(1, x)")
def _complement(b: OnnxBuilder, node: Node, x: str) -> str:
    return b.op("Sub", [b.const(f"{node.name}.one", 1.0), x], node.name)


@ONNX_OPS.lowers(Op.SCALE, how="Mul by the constant (compile folds it into the conv/linear reading it where it can)")
def _scale(b: OnnxBuilder, node: Node, x: str) -> str:
    return b.op("Mul", [x, b.const(f"{node.name}.factor", float(node.attrs.factor))], node.name)


def combine(b: OnnxBuilder, node: Node, names: list[str]) -> str:
    """`names` combined pairwise, left to right (the reference's order), by the node's ONNX op."""
    total = names[0]
    for i, other in enumerate(names[1:], start=1):
        total = b.op(COMBINING_OPS[node.op], [total, other],
                     node.name if i == len(names) - 1 else f"{node.name}.partial{i}")
    return total
ONNX_OPS.lower(Op.MEAN_OVER_TIME, "ReduceMean over steps (running mean in the step model)")
ONNX_OPS.lower(Op.OUTPUT, "logits (time mean of a per-step head)")


def stateless(b: OnnxBuilder, node: Node, x: str) -> str:
    """Lower a stateless per-frame op through its registered rule."""
    if node.op not in STATELESS_OPS:
        raise GraphError(f"node '{node.name}': op {node.op.value} is not a stateless per-frame op")
    return ONNX_OPS.rule(node)(b, node, x)


STATELESS_OPS = frozenset(op for op, entry in ONNX_OPS.table.items() if getattr(entry, "rule", None) is not None)


def initial_v(a: NeuronAttrs) -> float:
    """The membrane potential before the first step (v_reset; 0 for soft reset)."""
    return 0.0 if a.v_reset is None else float(a.v_reset)


def neuron_step(b: OnnxBuilder, name: str, a: NeuronAttrs, x: str, v: str | None, prefix: str,
                want_v: bool = True, v_name: str | None = None) -> tuple[str, str | None]:
    """Emit one neuron step; returns (silent, new v). `v=None` means the reset state (first step).

    `silent` is the boolean `h < v_th`, the negated spike; callers turn it into float spikes with
    `spikes()` (the sequence layout does so once for all T steps, after concatenating the booleans,
    which moves a quarter of the bytes). The hard reset to 0 reuses it, `v = h * Cast(silent)`, so a
    step costs one comparison instead of two. Helper tensors are named `{prefix}.h` etc.; the new v
    defaults to `{prefix}.v`.
    The float operations and their order are those of `ir.neuron.neuron_step`, so results match
    bit for bit. Where v is the constant reset value the no-op arithmetic is skipped: 0 + y, y - 0
    and y * 1 are exact in IEEE floats, so skipping them changes no bit.
    NOTE: `h - v_th >= 0` is computed as `not (h < v_th)`; the sign of a rounded difference is the
    sign of the exact one, and no value is NaN, so both agree. `spike * v_reset + (1 - spike) * h` is
    `Where(silent, h, v_reset)` (and `h * silent` when v_reset is 0, up to the sign of a zero, which
    no later step can see).
    """
    h = _charge(b, name, a, x, v, prefix)
    silent = b.op("Less", [h, b.const(f"{name}.v_threshold", float(a.v_threshold))], f"{prefix}.silent")
    if not want_v:
        return silent, None
    out = v_name or f"{prefix}.v"
    # NOTE: Where with a broadcast scalar is several times slower in ONNX Runtime's CPU kernels than
    # Cast + Mul, so the common resets use the arithmetic forms (still bit-exact, see above).
    if a.soft_reset:  # h - spike * v_th
        drop = b.op("Mul", [spikes(b, silent, f"{prefix}.spike"), f"{name}.v_threshold"], f"{prefix}.drop")
        return silent, b.op("Sub", [h, drop], out)
    if initial_v(a) == 0.0:  # spike * 0 + (1 - spike) * h == h * silent
        return silent, b.op("Mul", [h, to_float(b, silent, f"{prefix}.keep")], out)
    return silent, b.op("Where", [silent, h, b.const(f"{name}.v_reset", initial_v(a))], out)


def _charge(b: OnnxBuilder, name: str, a: NeuronAttrs, x: str, v: str | None, prefix: str) -> str:
    """The membrane potential h before firing (`ir.neuron.neuron_charge`)."""
    v0 = initial_v(a)

    def tau() -> str:
        return b.const(f"{name}.tau", float(a.tau))

    def v_reset() -> str:
        return b.const(f"{name}.v_reset", v0)

    if a.kind is NeuronKind.IF:
        if v is None:
            return x if v0 == 0.0 else b.op("Add", [v_reset(), x], f"{prefix}.h")
        return b.op("Add", [v, x], f"{prefix}.h")
    if a.decay_input:
        if v is None:  # v + (x - 0) / tau
            scaled = b.op("Div", [x, tau()], f"{prefix}.dx")
            return scaled if v0 == 0.0 else b.op("Add", [v_reset(), scaled], f"{prefix}.h")
        leak = v if v0 == 0.0 else b.op("Sub", [v, v_reset()], f"{prefix}.dv")
        diff = b.op("Sub", [x, leak], f"{prefix}.diff")
        scaled = b.op("Div", [diff, tau()], f"{prefix}.dx")
        return b.op("Add", [v, scaled], f"{prefix}.h")
    if v is None:  # v_reset - 0 / tau + x
        return x if v0 == 0.0 else b.op("Add", [v_reset(), x], f"{prefix}.h")
    leak = v if v0 == 0.0 else b.op("Sub", [v, v_reset()], f"{prefix}.dv")
    decay = b.op("Div", [leak, tau()], f"{prefix}.decay")
    kept = b.op("Sub", [v, decay], f"{prefix}.leaked")
    return b.op("Add", [kept, x], f"{prefix}.h")


def spikes(b: OnnxBuilder, silent: str, name: str) -> str:
    """Boolean `silent` -> float32 spikes 0/1 (`Not` on bytes, then one `Cast`)."""
    return to_float(b, b.op("Not", [silent], f"{name}.fired"), name)


def to_float(b: OnnxBuilder, fired: str, name: str) -> str:
    """A boolean tensor -> float32 0/1."""
    return b.op("Cast", [fired], name, to=TensorProto.FLOAT)
