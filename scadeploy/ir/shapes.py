"""Shape rules: `rule(attrs, input_shapes) -> output shape` (per sample, no T or N); `ir/ops.py` names
one per op and applies them (`infer_shape`)."""

from __future__ import annotations

from collections.abc import Sequence

from scadeploy.errors import GraphError
from scadeploy.ir.graph import Shape


def _out_len(size: int, kernel: int, stride: int, padding: int, dilation: int = 1) -> int:
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def _expect_rank(shapes: Sequence[Shape], rank: int, what: str) -> Shape:
    (shape,) = shapes
    if len(shape) != rank:
        raise GraphError(f"{what} expects a rank-{rank} input, got shape {shape}")
    return shape


def conv2d(a, shapes: Sequence[Shape]) -> Shape:
    c, h, w = _expect_rank(shapes, 3, "conv2d")
    if c != a.in_channels:
        raise GraphError(f"conv2d expects {a.in_channels} input channels, got {c}")
    return (
        a.out_channels,
        _out_len(h, a.kernel_size[0], a.stride[0], a.padding[0], a.dilation[0]),
        _out_len(w, a.kernel_size[1], a.stride[1], a.padding[1], a.dilation[1]),
    )


def linear(a, shapes: Sequence[Shape]) -> Shape:
    (f,) = _expect_rank(shapes, 1, "linear")
    if f != a.in_features:
        raise GraphError(f"linear expects {a.in_features} input features, got {f}")
    return (a.out_features,)


def batchnorm(a, shapes: Sequence[Shape]) -> Shape:
    (shape,) = shapes
    if shape[0] != a.num_features:
        raise GraphError(f"batchnorm expects {a.num_features} channels, got {shape[0]}")
    return shape


def pool(a, shapes: Sequence[Shape]) -> Shape:
    c, h, w = _expect_rank(shapes, 3, "pooling")
    return (
        c,
        _out_len(h, a.kernel_size[0], a.stride[0], a.padding[0]),
        _out_len(w, a.kernel_size[1], a.stride[1], a.padding[1]),
    )


def adaptive_pool(a, shapes: Sequence[Shape]) -> Shape:
    c, _, _ = _expect_rank(shapes, 3, "adaptive pooling")
    return (c, *a.output_size)


def flatten(a, shapes: Sequence[Shape]) -> Shape:
    (shape,) = shapes
    size = 1
    for dim in shape:
        size *= dim
    return (size,)


def add(a, shapes: Sequence[Shape]) -> Shape:
    if len(shapes) < 2 or len(set(shapes)) != 1:
        raise GraphError(f"add expects two or more inputs of one shape, got {list(shapes)}")
    return shapes[0]


def mul(a, shapes: Sequence[Shape]) -> Shape:
    if len(shapes) != 2 or shapes[0] != shapes[1]:
        raise GraphError(f"mul expects two inputs of one shape, got {list(shapes)}")
    return shapes[0]


def same(a, shapes: Sequence[Shape]) -> Shape:
    (shape,) = shapes
    return shape
