"""How far a float32 run of a graph can be from exact arithmetic: a bound on every neuron's potential.

Two float32 executions of one network (masked and stripped, torch and ONNX Runtime) sum in different
orders, so a neuron whose exact potential sits within rounding of its threshold may fire in one and not
the other. Such a flip is a tie, not a bug. This module bounds |float32 h - exact h| for every neuron,
step and position, given identical spikes upstream, so a flip can be judged: a tie when the float64
potential is within the bound of the threshold, a real difference otherwise.

Per node output it propagates, in float64, the magnitude M (an upper bound of |value| computed with
|weights| and |inputs|) and the error bound E. A sum of k terms computed in any order errs by at most
gamma_k = k * u * (sum of the terms' magnitudes) (Higham, Accuracy and Stability of Numerical
Algorithms, 2nd ed., section 3.1), u = 2^-24. A neuron's output spikes are taken as given (E = 0):
the judge only looks at flips whose upstream spikes agree. An op without a rule here gives an
infinite bound, so no flip through it is ever called a tie (`_reference_value`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from scadeploy.ir.graph import Encoding, Graph, Node, Op
from scadeploy.ir.neuron import initial_potential, neuron_charge, neuron_fire_reset
from scadeploy.ir.ops import OPS
from scadeploy.ir.reference import Value

U32 = 2.0**-24  # float32 unit roundoff: every float32 operation returns the exact result times (1 + d), |d| <= U32
NEURON_OPS_SLACK = 4.0  # a charge, fire and reset: at most four roundings of magnitudes <= |v| + |x| + |h|


@dataclass
class Bound:
    """`magnitude` >= |value| and `error` >= |float32 value - exact value|, both [T, N, ...] float64."""

    magnitude: torch.Tensor
    error: torch.Tensor


@dataclass
class NeuronTrace:
    """A neuron's exact potential before firing, its float32 error bound, and its threshold."""

    potential: torch.Tensor  # [T, N, ...] float64
    error: torch.Tensor  # [T, N, ...]
    threshold: float


def _per_step(fn, t: torch.Tensor) -> torch.Tensor:
    out = fn(t.flatten(0, 1))
    return out.reshape(*t.shape[:2], *out.shape[1:])


def _weighted(node: Node, x: Bound, value_in: torch.Tensor) -> tuple[Bound, torch.Tensor]:
    """conv/linear: the value, and its magnitude and error from |W| (bias counted as one more term)."""
    a, p = node.attrs, {k: v.double() for k, v in node.params.items()}
    weight, bias = p["weight"], p.get("bias")
    if node.op is Op.CONV2D:
        def apply(t: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
            return _per_step(lambda f: F.conv2d(f, w, b, a.stride, a.padding, a.dilation, a.groups), t)
        terms = weight[0].numel() + 1
    else:
        def apply(t: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
            return _per_step(lambda f: F.linear(f, w, b), t)
        terms = weight.shape[1] + 1
    value = apply(value_in, weight, bias)
    magnitude = apply(x.magnitude, weight.abs(), None if bias is None else bias.abs())
    error = apply(x.error, weight.abs(), None) + terms * U32 * magnitude
    return Bound(magnitude, error), value


def _batchnorm(node: Node, x: Bound, value_in: torch.Tensor) -> tuple[Bound, torch.Tensor]:
    p = {k: v.double() for k, v in node.params.items()}
    shape = (-1,) + (1,) * (value_in.dim() - 3)
    scale = (p["weight"] / torch.sqrt(p["running_var"] + node.attrs.eps)).reshape(shape)
    mean, shift = p["running_mean"].reshape(shape), p["bias"].reshape(shape)
    value = (value_in - mean) * scale + shift
    magnitude = (x.magnitude + mean.abs()) * scale.abs() + shift.abs()
    return Bound(magnitude, x.error * scale.abs() + 8 * U32 * magnitude), value


def _neuron(node: Node, x: Bound, value_in: torch.Tensor) -> tuple[Bound, torch.Tensor, NeuronTrace]:
    a = node.attrs
    v = initial_potential(a, value_in[0])
    v_error = torch.zeros_like(v)
    spikes, potentials, errors = [], [], []
    for x_t, m_t, e_t in zip(value_in, x.magnitude, x.error, strict=True):
        h = neuron_charge(a, x_t, v)
        h_error = v_error + e_t + NEURON_OPS_SLACK * U32 * (v.abs() + m_t + h.abs() + abs(a.v_reset or 0.0))
        s, v = neuron_fire_reset(a, h)
        v_error = h_error * (1 - s) if a.v_reset is not None else h_error + U32 * abs(a.v_threshold)
        spikes.append(s)
        potentials.append(h)
        errors.append(h_error)
    out = torch.stack(spikes)
    trace = NeuronTrace(torch.stack(potentials), torch.stack(errors), float(a.v_threshold))
    return Bound(out, torch.zeros_like(out)), out, trace


def _pooled(node: Node, x: Bound, value_in: torch.Tensor) -> tuple[Bound, torch.Tensor]:
    a = node.attrs
    if node.op is Op.MAXPOOL:
        pool = lambda t: _per_step(lambda f: F.max_pool2d(f, a.kernel_size, a.stride, a.padding), t)  # noqa: E731
        return Bound(pool(x.magnitude), pool(x.error)), pool(value_in)
    pool = lambda t: _per_step(lambda f: F.avg_pool2d(f, a.kernel_size, a.stride, a.padding), t)  # noqa: E731
    magnitude = pool(x.magnitude)
    terms = a.kernel_size[0] * a.kernel_size[1] + 1
    return Bound(magnitude, pool(x.error) + terms * U32 * magnitude), pool(value_in)


def _elementwise(node: Node, bs: list[Bound], ins: list[torch.Tensor]) -> tuple[Bound, torch.Tensor]:
    """Products (a*b: |a||b| + the first-order error terms), complements (1 - a), constant scales and
    adaptive pooling (an average of at most the whole input plane)."""
    if node.op is Op.MUL:
        (a, b), (ma, mb) = bs, (bs[0].magnitude, bs[1].magnitude)
        magnitude = ma * mb
        error = a.error * mb + b.error * ma + a.error * b.error + U32 * magnitude
        return Bound(magnitude, error), ins[0] * ins[1]
    if node.op is Op.COMPLEMENT:
        magnitude = 1.0 + bs[0].magnitude
        return Bound(magnitude, bs[0].error + U32 * magnitude), 1.0 - ins[0]
    if node.op is Op.SCALE:
        factor = abs(node.attrs.factor)
        magnitude = factor * bs[0].magnitude
        return Bound(magnitude, factor * bs[0].error + U32 * magnitude), node.attrs.factor * ins[0]
    size = node.attrs.output_size
    pool = lambda t: _per_step(lambda f: F.adaptive_avg_pool2d(f, size), t)  # noqa: E731
    magnitude = pool(bs[0].magnitude)
    terms = ins[0].shape[-1] * ins[0].shape[-2] + 1
    return Bound(magnitude, pool(bs[0].error) + terms * U32 * magnitude), pool(ins[0])


def neuron_traces(graph: Graph, x: torch.Tensor) -> dict[str, NeuronTrace]:
    """Every neuron's exact (float64) potential and its float32 error bound on inputs `x`."""
    t_steps = graph.timesteps
    x = x.double()
    if graph.input.attrs.encoding is Encoding.DIRECT:
        x = x.unsqueeze(0).expand(t_steps, *x.shape)
    values = {graph.input.name: x}
    bounds = {graph.input.name: Bound(x.abs(), torch.zeros_like(x))}
    traces: dict[str, NeuronTrace] = {}
    for node in graph.nodes[1:]:
        if node.op in (Op.MEAN_OVER_TIME, Op.OUTPUT):
            continue  # after the last neurons: nothing left to judge
        ins = [values[i] for i in node.inputs]
        bs = [bounds[i] for i in node.inputs]
        if node.op in (Op.CONV2D, Op.LINEAR):
            bound, value = _weighted(node, bs[0], ins[0])
        elif node.op is Op.BATCHNORM:
            bound, value = _batchnorm(node, bs[0], ins[0])
        elif node.op is Op.NEURON:
            bound, value, traces[node.name] = _neuron(node, bs[0], ins[0])
        elif node.op in (Op.MAXPOOL, Op.AVGPOOL):
            bound, value = _pooled(node, bs[0], ins[0])
        elif node.op is Op.FLATTEN:
            bound = Bound(bs[0].magnitude.flatten(2), bs[0].error.flatten(2))
            value = ins[0].flatten(2)
        elif node.op is Op.ADD:
            magnitude = sum(b.magnitude for b in bs)
            bound = Bound(magnitude, sum(b.error for b in bs) + len(bs) * U32 * magnitude)
            value = sum(ins[1:], ins[0])
        elif node.op in (Op.MUL, Op.COMPLEMENT, Op.SCALE, Op.ADAPTIVE_AVGPOOL):
            bound, value = _elementwise(node, bs, ins)
        else:
            value = _reference_value(node, ins, t_steps)
            bound = Bound(value.abs(), torch.full_like(value, float("inf")))
        values[node.name], bounds[node.name] = value, bound
    return traces


def _reference_value(node: Node, ins: list[torch.Tensor], timesteps: int) -> torch.Tensor:
    """An op this module has no bound for: its value from the reference rule, its error unbounded."""
    params = {k: v.double() for k, v in node.params.items()}
    return OPS[node.op].reference(node, [Value(t, False) for t in ins], timesteps, params).tensor


@dataclass(frozen=True)
class Float32Flips:
    """Spikes two float32 runs of one network disagree on, judged tie-aware.

    A flip is a root when every neuron upstream of it (at steps up to its own) and its own neuron at
    earlier steps agree in both runs: only rounding can then separate them. A root is a tie when the
    float64 potential lies within the float32 error bound of the threshold (`ir/rounding.py`). The
    other flips follow from roots, so the runs are explained when every root is a tie."""

    flips: int
    roots: int
    ties: int


def _restricted(t: torch.Tensor, index: torch.Tensor | None) -> torch.Tensor:
    """The kept channels (or features) of a `[T, N, C, ...]` tensor; all of it without an index."""
    return t if index is None else t[:, :, index]


def _upstream_neurons(graph: Graph) -> dict[str, set[str]]:
    """For every neuron, the neurons its input depends on."""
    upstream: dict[str, set[str]] = {}
    for node in graph.nodes:
        deps = set().union(*(upstream[i] | ({i} if graph[i].op is Op.NEURON else set()) for i in node.inputs))
        upstream[node.name] = deps
    return {n.name: upstream[n.name] for n in graph.of_op(Op.NEURON)}


def judge_float32_flips(graph: Graph, spikes_a: dict[str, torch.Tensor], spikes_b: dict[str, torch.Tensor],
                        kept_index: dict[str, torch.Tensor], x: torch.Tensor) -> Float32Flips:
    """Judge the flips between run `a` of `graph` and run `b` (of the same graph, or of its stripped form:
    `kept_index` restricts `a` to the channels `b` kept) on inputs `x`; spikes are `[T, N, ...]`."""
    diff = {name: _restricted(a, kept_index.get(name)) != spikes_b[name] for name, a in spikes_a.items()}
    if not any(bool(d.any()) for d in diff.values()):
        return Float32Flips(0, 0, 0)  # nothing to judge: no bound needed
    # ever_diff[name][t, n]: some position of the neuron differs at a step <= t, in sample n
    ever = {name: d.flatten(2).any(-1).to(torch.int8).cummax(0).values.bool() for name, d in diff.items()}
    traces = neuron_traces(graph, x)
    flips = roots = ties = 0
    for name, upstream in _upstream_neurons(graph).items():
        d = diff[name]
        flips += int(d.sum())
        if not bool(d.any()):
            continue
        earlier_own = torch.cat([torch.zeros_like(ever[name][:1]), ever[name][:-1]])
        disturbed = earlier_own.clone()
        for other in upstream:
            disturbed |= ever[other]
        root = d & ~disturbed.reshape(*disturbed.shape, *(1,) * (d.dim() - 2))
        trace = traces[name]
        margin = (_restricted(trace.potential, kept_index.get(name)) - trace.threshold).abs()
        bound = _restricted(trace.error, kept_index.get(name))
        roots += int(root.sum())
        ties += int((root & (margin <= bound)).sum())
    return Float32Flips(flips, roots, ties)
