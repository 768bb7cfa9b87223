"""The op registry: every IR op declared once, with its attributes, shape rule, parameters and meaning.

Adding an op means adding one `OpSpec` here (its attribute dataclass in `ir/graph.py`, its shape
rule in `ir/shapes.py`, its reference rule in `ir/reference.py`) and one entry in every backend's
`BackendOps` table: a lowering, or a refusal that says why the backend cannot express it.
`registry_problems` lists what is missing; the test suite runs it over every backend, and the
layer table in docs/layers.md is generated from these tables (`backends/op_tables.py`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from scadeploy.errors import UnsupportedError
from scadeploy.ir import reference, shapes
from scadeploy.ir.graph import (
    AdaptivePoolAttrs,
    AddAttrs,
    BatchNormAttrs,
    ComplementAttrs,
    Conv2dAttrs,
    FlattenAttrs,
    Graph,
    InputAttrs,
    LinearAttrs,
    MeanOverTimeAttrs,
    MulAttrs,
    NeuronAttrs,
    Node,
    Op,
    OutputAttrs,
    PoolAttrs,
    ScaleAttrs,
    Shape,
)

ParamRule = Callable[[object], dict[str, Shape]]


def no_params(attrs: object) -> dict[str, Shape]:
    return {}


def _weights(out: int, weight: Shape, bias: bool) -> dict[str, Shape]:
    return {"weight": weight} | ({"bias": (out,)} if bias else {})


def _conv_params(a: Conv2dAttrs) -> dict[str, Shape]:
    return _weights(a.out_channels, (a.out_channels, a.in_channels // a.groups, *a.kernel_size), a.bias)


def _linear_params(a: LinearAttrs) -> dict[str, Shape]:
    return _weights(a.out_features, (a.out_features, a.in_features), a.bias)


def _batchnorm_params(a: BatchNormAttrs) -> dict[str, Shape]:
    c = (a.num_features,)
    return {"weight": c, "bias": c, "running_mean": c, "running_var": c}


@dataclass(frozen=True)
class OpSpec:
    """Everything the IR knows about one op. `channel_wise`: output channel c depends on input channel c
    only (so masks pass through it); `producer`: a weight matrix makes new channels (masks start here)."""

    op: Op
    attrs: type
    summary: str
    shape: Callable[..., Shape] | None
    reference: reference.ReferenceRule
    params: ParamRule = no_params
    channel_wise: bool = False
    producer: bool = False


OPS: dict[Op, OpSpec] = {s.op: s for s in (
    OpSpec(Op.INPUT, InputAttrs, "graph input: one frame per sample (direct) or a [T, N, ...] sequence",
           None, reference.no_rule),
    OpSpec(Op.CONV2D, Conv2dAttrs, "2-D convolution (stride, padding, dilation, groups, bias)",
           shapes.conv2d, reference.conv2d, _conv_params, producer=True),
    OpSpec(Op.LINEAR, LinearAttrs, "fully connected layer", shapes.linear, reference.linear, _linear_params,
           producer=True),
    OpSpec(Op.BATCHNORM, BatchNormAttrs, "batch norm with running statistics (eval mode)",
           shapes.batchnorm, reference.batchnorm, _batchnorm_params, channel_wise=True),
    OpSpec(Op.NEURON, NeuronAttrs, "IF / LIF / PLIF neuron, hard or soft reset", shapes.same, reference.neuron,
           channel_wise=True),
    OpSpec(Op.MAXPOOL, PoolAttrs, "max pooling", shapes.pool, reference.maxpool, channel_wise=True),
    OpSpec(Op.AVGPOOL, PoolAttrs, "average pooling (zero padding counted)", shapes.pool, reference.avgpool,
           channel_wise=True),
    OpSpec(Op.ADAPTIVE_AVGPOOL, AdaptivePoolAttrs, "adaptive average pooling to a grid of uneven or overlapping "
           "bins (a fixed average per channel)", shapes.adaptive_pool, reference.adaptive_avgpool, channel_wise=True),
    OpSpec(Op.FLATTEN, FlattenAttrs, "flatten (C, H, W) to C*H*W features, channel-major", shapes.flatten,
           reference.flatten),
    OpSpec(Op.ADD, AddAttrs, "element-wise sum (residual connection)", shapes.add, reference.add,
           channel_wise=True),
    OpSpec(Op.MUL, MulAttrs, "element-wise product of two inputs (SEW AND; with complement, IAND)", shapes.mul,
           reference.mul, channel_wise=True),
    OpSpec(Op.COMPLEMENT, ComplementAttrs, "1 - x, element-wise (SEW IAND's negated input)", shapes.same,
           reference.complement, channel_wise=True),
    OpSpec(Op.SCALE, ScaleAttrs, "x times a constant (OTTT's Scale)", shapes.same, reference.scale,
           channel_wise=True),
    OpSpec(Op.MEAN_OVER_TIME, MeanOverTimeAttrs, "mean over the T time steps", shapes.same,
           reference.mean_over_time, channel_wise=True),
    OpSpec(Op.OUTPUT, OutputAttrs, "graph output (logits; a per-step output is averaged over time)",
           shapes.same, reference.output),
)}

ATTRS_OF_OP: dict[Op, type] = {op: s.attrs for op, s in OPS.items()}
CHANNEL_WISE_OPS = frozenset(op for op, s in OPS.items() if s.channel_wise)
PRODUCER_OPS = frozenset(op for op, s in OPS.items() if s.producer)


def infer_shape(op: Op, attrs: object, input_shapes: list[Shape] | tuple[Shape, ...]) -> Shape:
    """The op's shape rule applied to its inputs' per-sample shapes."""
    rule = OPS[op].shape
    if rule is None:
        raise UnsupportedError(f"op {op.value} has no shape rule; its shape is given")
    return rule(attrs, input_shapes)


def expected_param_shapes(node: Node) -> dict[str, Shape]:
    """The parameters a node must carry, with their shapes."""
    return OPS[node.op].params(node.attrs)


@dataclass(frozen=True)
class Lowering:
    """How a backend expresses an op: one line for the layer table, and the backend's function for it
    where the backend dispatches by op (None where a rewrite or the writer handles it as a whole)."""

    how: str
    rule: Callable | None = None


@dataclass(frozen=True)
class Refusal:
    """Why a backend cannot express an op exactly; the refusal names the node and this reason."""

    reason: str


@dataclass
class BackendOps:
    """One backend's table: every IR op is lowered or refused, by op."""

    backend: str
    table: dict[Op, Lowering | Refusal] = field(default_factory=dict)

    def lower(self, op: Op, how: str, rule: Callable | None = None) -> None:
        if op in self.table:
            raise ValueError(f"{self.backend}: op {op.value} is registered twice")
        self.table[op] = Lowering(how, rule)

    def lowers(self, *ops: Op, how: str) -> Callable[[Callable], Callable]:
        """Decorator: register the function as the lowering of `ops`."""
        def register(rule: Callable) -> Callable:
            for op in ops:
                self.lower(op, how, rule)
            return rule
        return register

    def refuse(self, op: Op, reason: str) -> None:
        if op in self.table:
            raise ValueError(f"{self.backend}: op {op.value} is registered twice")
        self.table[op] = Refusal(reason)

    def rule(self, node: Node) -> Callable:
        """The registered function for `node`'s op; an UnsupportedError naming the node otherwise."""
        entry = self.table.get(node.op)
        if isinstance(entry, Lowering) and entry.rule is not None:
            return entry.rule
        raise UnsupportedError(f"{self.backend} cannot lower '{node.name}' ({node.op.value})" +
                               (f": {entry.reason}" if isinstance(entry, Refusal) else ""))

    def refusals(self, graph: Graph) -> list[str]:
        """One line per node whose op this backend refuses."""
        return [f"'{n.name}' ({n.op.value}): {self.table[n.op].reason}" for n in graph
                if isinstance(self.table.get(n.op), Refusal)]


def registry_problems(ops: Mapping[Op, OpSpec], backends: Iterable[BackendOps]) -> list[str]:
    """Everything an op lacks: a shape rule (all but the input), a reference rule, a lowering or refusal
    in every backend. Empty when the registry is complete."""
    problems = []
    for op, spec in ops.items():
        if spec.shape is None and op is not Op.INPUT:
            problems.append(f"op {op.value} has no shape rule")
        if not callable(spec.reference) or (spec.reference is reference.no_rule and op is not Op.INPUT):
            problems.append(f"op {op.value} has no reference rule")
    for backend in backends:
        problems += [f"backend {backend.backend} neither lowers nor refuses op {op.value}"
                     for op in ops if op not in backend.table]
        problems += [f"backend {backend.backend} registers unknown op {op.value}"
                     for op in backend.table if op not in ops]
    return problems
