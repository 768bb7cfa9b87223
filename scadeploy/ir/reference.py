"""Reference semantics, one rule per op: what each op computes, in torch, on `[T, N, ...]` values.

These rules are the meaning of the IR; `backends/torch_ref.py` runs them over a graph and every
other backend is measured against it. A direct-encoded input and everything computed from it
before the first neuron stays one static `[N, ...]` frame (the same at every step), so those
layers run once instead of T times.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from scadeploy.ir.graph import Node
from scadeploy.ir.neuron import run_neuron

Params = dict[str, torch.Tensor]


@dataclass
class Value:
    tensor: torch.Tensor
    static: bool  # True: one [N, ...] frame shared by every step; False: [T, N, ...] (or untimed)
    timed: bool = True


ReferenceRule = Callable[[Node, list[Value], int, Params], Value]


def per_frame(fn: Callable[[torch.Tensor], torch.Tensor], value: Value) -> Value:
    """Apply a stateless op to every frame, folding T into the batch (one call on T*N)."""
    t = value.tensor
    if value.static or not value.timed:
        return Value(fn(t), value.static, value.timed)
    out = fn(t.flatten(0, 1))
    return Value(out.reshape(t.shape[0], t.shape[1], *out.shape[1:]), False)


def elementwise(fn: Callable[..., torch.Tensor], args: list[Value]) -> Value:
    """An element-wise op of several values: static only if every input is."""
    if all(v.static for v in args):
        return Value(fn(*(v.tensor for v in args)), True)
    timed = args[0].timed
    tensors = [v.tensor for v in args]
    return Value(fn(*tensors), False, timed)


def no_rule(node: Node, args: list[Value], timesteps: int, params: Params) -> Value:
    raise NotImplementedError(f"op {node.op.value} is not executed by the reference")  # the input is given


def conv2d(node: Node, args: list[Value], timesteps: int, p: Params) -> Value:
    a = node.attrs
    return per_frame(lambda t: F.conv2d(t, p["weight"], p.get("bias"), a.stride, a.padding, a.dilation, a.groups),
                     args[0])


def linear(node: Node, args: list[Value], timesteps: int, p: Params) -> Value:
    return per_frame(lambda t: F.linear(t, p["weight"], p.get("bias")), args[0])


def batchnorm(node: Node, args: list[Value], timesteps: int, p: Params) -> Value:
    return per_frame(lambda t: F.batch_norm(t, p["running_mean"], p["running_var"], p["weight"], p["bias"],
                                            False, 0.0, node.attrs.eps), args[0])


def maxpool(node: Node, args: list[Value], timesteps: int, p: Params) -> Value:
    a = node.attrs
    return per_frame(lambda t: F.max_pool2d(t, a.kernel_size, a.stride, a.padding), args[0])


def avgpool(node: Node, args: list[Value], timesteps: int, p: Params) -> Value:
    a = node.attrs
    return per_frame(lambda t: F.avg_pool2d(t, a.kernel_size, a.stride, a.padding), args[0])


def adaptive_avgpool(node: Node, args: list[Value], timesteps: int, p: Params) -> Value:
    return per_frame(lambda t: F.adaptive_avg_pool2d(t, node.attrs.output_size), args[0])


def flatten(node: Node, args: list[Value], timesteps: int, p: Params) -> Value:
    return per_frame(lambda t: t.flatten(1), args[0])


def neuron(node: Node, args: list[Value], timesteps: int, p: Params) -> Value:
    x = args[0]
    seq = x.tensor.expand(timesteps, *x.tensor.shape) if x.static else x.tensor
    return Value(run_neuron(node.attrs, seq), False)


def add(node: Node, args: list[Value], timesteps: int, p: Params) -> Value:
    return elementwise(lambda *ts: sum(ts[1:], ts[0]), args)


def mul(node: Node, args: list[Value], timesteps: int, p: Params) -> Value:
    return elementwise(lambda a, b: a * b, args)


def complement(node: Node, args: list[Value], timesteps: int, p: Params) -> Value:
    return elementwise(lambda t: 1.0 - t, args)


def scale(node: Node, args: list[Value], timesteps: int, p: Params) -> Value:
    return elementwise(lambda t: t * node.attrs.factor, args)


def mean_over_time(node: Node, args: list[Value], timesteps: int, p: Params) -> Value:
    x = args[0]
    return Value(x.tensor if x.static else x.tensor.mean(0), False, timed=False)


def output(node: Node, args: list[Value], timesteps: int, p: Params) -> Value:
    x = args[0]
    return Value(x.tensor if (x.static or not x.timed) else x.tensor.mean(0), False, timed=False)
