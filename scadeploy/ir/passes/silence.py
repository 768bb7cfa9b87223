"""Silence certification: which channels carry an input-independent value, and which value.

An abstract interpretation over the graph, per node output and channel: either unknown, or a
known value per time step that is the same at every position and for every input. A conv
channel whose filter only touches channels known to be zero outputs exactly its bias; BN maps
known values affinely; a product is an exact zero where either factor is one (whatever the other
is), and 1 - x and x * c map known values; a neuron fed a known sequence is simulated from reset for T steps and
its spikes become known. Removing a channel is exact when every conv/linear reading it sees
a known zero at every step.

The certificate must hold in the arithmetic the runtimes use (float32, in whatever order ONNX
Runtime or torch evaluates BN, pooling and the neuron), not only in float64. So every known value
carries `err`, a bound on |float32 result - exact value| for any evaluation order, propagated
through each op (a few units of float32 rounding of the magnitudes involved, growing with T for
neurons). A spike decision is certified only where the float64 potential is further than that
bound from the threshold and a float32 run of the neuron equations (`ir.neuron`, same order)
decides the same. A value counts as zero only when it is exactly zero in every arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from scadeploy.ir.graph import Graph, NeuronAttrs, NeuronKind, Node, Op
from scadeploy.ir.neuron import initial_potential, neuron_charge, neuron_fire_reset
from scadeploy.ir.passes.channel_groups import ChannelGroups
from scadeploy.ir.rounding import U32

# NOTE: float32 unit roundoff U32 (`ir/rounding.py`). Every float32 operation returns the exact result
# times (1 + d), |d| <= U32. An expression is charged `slack` roundings of the sum of its terms' magnitudes, which
# bounds its error for any evaluation order: 2 for a neuron's charge (one to four operations whose
# results are bounded by |v| + |x| + |v_reset| + |h|), 8 for BN (scale = w / sqrt(var + eps) and
# three more operations, possibly refolded into a conv bias).
NEURON_SLACK = 2.0
BN_SLACK = 8.0


@dataclass
class Known:
    """`known[c]`: channel c is input-independent; then `values[:, c]` is its value at each step and
    `err[:, c]` bounds how far a float32 evaluation of it can be from that value. `tie[c]`: unknown
    only because a neuron potential came within float32 rounding of its threshold."""

    known: torch.Tensor  # bool [C]
    values: torch.Tensor  # float64 [T, C]
    err: torch.Tensor  # float64 [T, C], >= 0
    tie: torch.Tensor  # bool [C]

    @classmethod
    def unknown(cls, channels: int, timesteps: int) -> Known:
        zeros = torch.zeros(timesteps, channels, dtype=torch.float64)
        no = torch.zeros(channels, dtype=torch.bool)
        return cls(no, zeros, zeros.clone(), no.clone())

    def zero(self) -> torch.Tensor:
        """Channels known to be exactly zero at every step, in float64 and in float32 alike."""
        return self.known & (self.values == 0).all(0) & (self.err == 0).all(0)


def _rounding(*magnitudes: torch.Tensor, slack: float = NEURON_SLACK) -> torch.Tensor:
    """The float32 rounding bound of an expression whose terms have these magnitudes."""
    return slack * U32 * sum(m.abs() for m in magnitudes)


def _simulate_neuron(a: NeuronAttrs, x: Known) -> Known:
    """Spikes of a neuron driven by known values; certified where no float32 run can decide otherwise."""
    v = initial_potential(a, x.values[0])
    v32 = v.float()
    v_err = torch.zeros_like(v)
    theta, reset = abs(a.v_threshold), abs(a.v_reset or 0.0)
    gain = 2.0 * max(1.0, 1.0 / a.tau) if a.kind is NeuronKind.LIF else 1.0
    spikes, certified = [], x.known.clone()
    for x_t, x_err, x32 in zip(x.values, x.err, x.values.float(), strict=True):
        h = neuron_charge(a, x_t, v)
        # NOTE: |h32 - h| <= (propagated errors) + rounding of |v|, |x|, |v_reset| and |h| for any order;
        # the threshold itself is rounded to float32 (U32 * theta) before `h - v_threshold`.
        h_err = gain * (v_err + x_err) + _rounding(v, x_t, h, torch.full_like(h, reset)) * gain + U32 * theta
        h32 = neuron_charge(a, x32, v32)
        s, v = neuron_fire_reset(a, h)
        s32, v32 = neuron_fire_reset(a, h32)
        certified &= ((h - a.v_threshold).abs() > h_err) & (s32.double() == s)
        v_err = torch.where(s.bool(), torch.full_like(h, U32 * reset), h_err) if a.v_reset is not None \
            else h_err + _rounding(h, torch.full_like(h, theta))
        spikes.append(s)
    values = torch.stack(spikes)
    tie = x.tie | (x.known & ~certified)
    return Known(certified, values, torch.zeros_like(values), tie)  # spikes are exact 0/1 where certified


def _producer(node: Node, x: Known, block: int, timesteps: int) -> Known:
    """Output channel o is known (= its bias, exact in float32) iff every input it weighs is an exact zero."""
    weight = node.params["weight"]
    out_channels = weight.shape[0]
    if node.op is Op.CONV2D and node.attrs.groups != 1:
        return Known.unknown(out_channels, timesteps)
    per_input = weight.reshape(out_channels, -1, block if node.op is Op.LINEAR else weight[0, 0].numel())
    touches = (per_input != 0).any(-1)  # [C_out, C_in channels]
    known = ~(touches & ~x.zero()).any(1)
    bias = node.params["bias"].double() if "bias" in node.params else torch.zeros(out_channels, dtype=torch.float64)
    values = bias.expand(timesteps, out_channels).clone()
    return Known(known, values, torch.zeros_like(values), torch.zeros_like(known))


def _batchnorm(node: Node, x: Known, block: int) -> Known:
    """Affine per channel, or per feature after a flatten: then a channel stays known only if all of
    its `block` features map to one value."""
    p = {k: v.double().reshape(-1, block) for k, v in node.params.items()}  # [C, block]
    scale = p["weight"] / torch.sqrt(p["running_var"] + node.attrs.eps)
    xv, xe = x.values[..., None], x.err[..., None]  # [T, C, 1]
    values = (xv - p["running_mean"]) * scale + p["bias"]  # [T, C, block]
    err = scale.abs() * xe + _rounding(xv * scale, p["running_mean"] * scale, p["bias"].expand_as(values),
                                         slack=BN_SLACK)
    uniform = (values == values[..., :1]).all(-1).all(0)
    return Known(x.known & uniform, values[..., 0], err.amax(-1), x.tie)


def _avgpool(node: Node, x: Known) -> Known:
    if node.attrs.padding != (0, 0):
        return Known(x.zero(), x.values, x.err, x.tie)  # zero padding breaks uniformity unless the value is zero
    kh, kw = node.attrs.kernel_size
    return Known(x.known, x.values, x.err + (kh * kw + 1) * U32 * x.values.abs(), x.tie)  # a float32 sum of k*k


def _adaptive_avgpool(node: Node, x: Known, in_shape: tuple[int, ...]) -> Known:
    """Every bin averages one channel (no padding), so a uniform channel stays uniform; a bin spans at most
    ceil(H/h) + 1 rows and ceil(W/w) + 1 columns, which bounds the float32 sum."""
    (_, h, w), (oh, ow) = in_shape, node.attrs.output_size
    window = (-(-h // oh) + 1) * (-(-w // ow) + 1)
    return Known(x.known, x.values, x.err + (window + 1) * U32 * x.values.abs(), x.tie)


def _add(args: list[Known]) -> Known:
    values = sum(a.values for a in args)
    err = sum(a.err for a in args) + _rounding(*(a.values for a in args))
    return Known(torch.stack([a.known for a in args]).all(0), values, err, torch.stack([a.tie for a in args]).any(0))


def _per_feature(x: Known, block: int, channels: int) -> Known:
    """`x` over `channels` entries: unchanged when it has them, else each channel spread over its `block`
    features (a flattened map added to features, see `channel_groups._mixes_blocks`)."""
    if x.known.shape[0] == channels:
        return x
    return Known(*(t.repeat_interleave(block, dim=-1) for t in (x.known, x.values, x.err, x.tie)))


def _mul(a: Known, b: Known) -> Known:
    """a * b. |a32 * b32 - a * b| <= (|a| eb + |b| ea + ea eb)(1 + U32) + U32 |a b| (one rounding); an exact
    zero factor makes the product an exact zero even where the other factor is unknown."""
    zero = a.zero() | b.zero()
    values = torch.where(zero, 0.0, a.values * b.values)
    spread = a.values.abs() * b.err + b.values.abs() * a.err + a.err * b.err
    err = torch.where(zero, 0.0, spread * (1 + U32) + U32 * values.abs())
    known = (a.known & b.known) | zero
    return Known(known, values, err, (a.tie | b.tie) & ~known)


def _complement(x: Known) -> Known:
    """1 - x: the propagated error plus one rounding of the result; 1 - 1 is an exact zero."""
    values = 1.0 - x.values
    return Known(x.known, values, x.err * (1 + U32) + U32 * values.abs(), x.tie)


def _scale(x: Known, factor: float) -> Known:
    """x * factor (factor rounded to float32 first, as torch does): both roundings are charged."""
    values = x.values * factor
    err = abs(factor) * x.err * (1 + U32) ** 2 + (2 * U32 + U32**2) * values.abs()
    return Known(x.known, values, err, x.tie)


def _mean_over_time(x: Known, timesteps: int) -> Known:
    mean = x.values.mean(0, keepdim=True).expand(timesteps, -1).clone()
    err = x.err.mean(0, keepdim=True) + (timesteps + 1) * U32 * x.values.abs().amax(0, keepdim=True)
    return Known(x.known, mean, err.expand(timesteps, -1).clone(), x.tie)


def find_known_channels(graph: Graph, groups: ChannelGroups) -> dict[str, Known]:
    """Known per-channel values of every node output."""
    T = graph.timesteps
    known: dict[str, Known] = {}
    for node in graph.nodes:
        channels = groups.of(node.name).channels
        args = [known[i] for i in node.inputs]
        if node.op is Op.INPUT:
            result = Known.unknown(channels, T)
        elif node.op in (Op.CONV2D, Op.LINEAR):
            result = _producer(node, args[0], groups.block(node.inputs[0]), T)
        elif node.op is Op.BATCHNORM:
            result = _batchnorm(node, args[0], groups.block(node.name))
        elif node.op is Op.NEURON:
            result = _simulate_neuron(node.attrs, args[0])
        elif node.op is Op.AVGPOOL:
            result = _avgpool(node, args[0])
        elif node.op is Op.ADAPTIVE_AVGPOOL:
            result = _adaptive_avgpool(node, args[0], graph[node.inputs[0]].shape)
        elif node.op is Op.ADD:
            result = _add([_per_feature(a, groups.block(i), channels) for a, i in zip(args, node.inputs, strict=True)])
        elif node.op is Op.MUL:
            result = _mul(*(_per_feature(a, groups.block(i), channels) for a, i in zip(args, node.inputs, strict=True)))
        elif node.op is Op.COMPLEMENT:
            result = _complement(args[0])
        elif node.op is Op.SCALE:
            result = _scale(args[0], node.attrs.factor)
        elif node.op is Op.MEAN_OVER_TIME:
            result = _mean_over_time(args[0], T)
        else:  # maxpool (pads with -inf, max of equal values is exact), flatten, output: values pass through
            result = args[0]
        known[node.name] = result
    return known
