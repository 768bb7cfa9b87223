"""The scadeploy IR: a closed set of ops, one frozen attribute dataclass per op, nodes and graphs.

Tensors flow as `[T, N, *shape]` (spikingjelly multi-step layout) until `mean_over_time`,
after which they are `[N, *shape]`. `Node.shape` is the per-sample shape: `(C, H, W)` for
feature maps, `(F,)` for vectors. Parameters live on their node as float tensors.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace

import torch

Shape = tuple[int, ...]
Pair = tuple[int, int]


class Op(enum.Enum):
    INPUT = "input"
    CONV2D = "conv2d"
    LINEAR = "linear"
    BATCHNORM = "batchnorm"
    NEURON = "neuron"
    MAXPOOL = "maxpool"
    AVGPOOL = "avgpool"
    ADAPTIVE_AVGPOOL = "adaptive_avgpool"
    FLATTEN = "flatten"
    ADD = "add"
    MUL = "mul"
    COMPLEMENT = "complement"
    SCALE = "scale"
    MEAN_OVER_TIME = "mean_over_time"
    OUTPUT = "output"


class Encoding(enum.Enum):
    DIRECT = "direct"  # one analog frame [N, *shape], presented unchanged at every step
    SEQUENCE = "sequence"  # a given sequence [T, N, *shape] (spikes or analog)


class NeuronKind(enum.Enum):
    IF = "if"
    LIF = "lif"


@dataclass(frozen=True)
class InputAttrs:
    """Graph input. DIRECT: x[t] = frame for every t (direct encoding); SEQUENCE: x is [T, N, ...]."""

    encoding: Encoding = Encoding.DIRECT


@dataclass(frozen=True)
class Conv2dAttrs:
    """y = cross_correlation(x, weight[C_out, C_in/groups, kH, kW]) + bias, zero padding."""

    in_channels: int
    out_channels: int
    kernel_size: Pair
    stride: Pair = (1, 1)
    padding: Pair = (0, 0)
    dilation: Pair = (1, 1)
    groups: int = 1
    bias: bool = False


@dataclass(frozen=True)
class LinearAttrs:
    """y = x @ weight[F_out, F_in].T + bias."""

    in_features: int
    out_features: int
    bias: bool = False


@dataclass(frozen=True)
class BatchNormAttrs:
    """Eval-mode BN over channels: y = (x - mean) / sqrt(var + eps) * weight + bias."""

    num_features: int
    eps: float = 1e-5


@dataclass(frozen=True)
class NeuronAttrs:
    """An IF or LIF neuron; its equations live in `scadeploy.ir.neuron`. Per step t, from v[-1] = v_reset:

    charge  IF:  h = v + x
            LIF: h = v + (x - (v - v_reset)) / tau       (decay_input)
                 h = v - (v - v_reset) / tau + x          (not decay_input)
    fire    s = 1 if h - v_threshold >= 0 else 0          (spikingjelly's `>=`)
    reset   hard: v = v_reset where s else h;  soft (v_reset None): v = h - s * v_threshold
    """

    kind: NeuronKind = NeuronKind.IF
    v_threshold: float = 1.0
    v_reset: float | None = 0.0
    tau: float = 2.0
    decay_input: bool = True

    @property
    def soft_reset(self) -> bool:
        return self.v_reset is None


@dataclass(frozen=True)
class PoolAttrs:
    """Max or average pooling; average pooling counts zero padding (PyTorch default)."""

    kernel_size: Pair
    stride: Pair
    padding: Pair = (0, 0)


@dataclass(frozen=True)
class AdaptivePoolAttrs:
    """Adaptive average pooling to an `output_size` grid whose bins are not one fixed window (they differ in
    size, or overlap: 2x2 -> 7x7). Bin i covers rows [floor(i*H/h), ceil((i+1)*H/h)), as in PyTorch;
    1x1 -> 7x7 replicates. Every output is a fixed average of its input channel, so it is channel-wise."""

    output_size: Pair


@dataclass(frozen=True)
class FlattenAttrs:
    """(C, H, W) -> (C*H*W,), channel-major: channel c owns features [c*H*W, (c+1)*H*W)."""


@dataclass(frozen=True)
class AddAttrs:
    """Element-wise sum of two or more inputs of one shape (residual connection)."""


@dataclass(frozen=True)
class MulAttrs:
    """Element-wise product of two inputs of one shape (SEW ResNet's AND: x * y, of spikes)."""


@dataclass(frozen=True)
class ComplementAttrs:
    """y = 1 - x, element-wise (SEW ResNet's IAND is x * (1 - y))."""


@dataclass(frozen=True)
class ScaleAttrs:
    """y = x * factor, one constant for every element (OTTT's `Scale` after a weight-standardized layer)."""

    factor: float = 1.0


@dataclass(frozen=True)
class MeanOverTimeAttrs:
    """[T, N, ...] -> [N, ...]: mean over the time axis."""


@dataclass(frozen=True)
class OutputAttrs:
    """Graph output; a still time-major output is averaged over time by every executor."""


Attrs = (
    InputAttrs
    | Conv2dAttrs
    | LinearAttrs
    | BatchNormAttrs
    | NeuronAttrs
    | PoolAttrs
    | AdaptivePoolAttrs
    | FlattenAttrs
    | AddAttrs
    | MulAttrs
    | ComplementAttrs
    | ScaleAttrs
    | MeanOverTimeAttrs
    | OutputAttrs
)

@dataclass(frozen=True)
class Node:
    """One operation. `inputs` name earlier nodes; `params` hold its float tensors."""

    name: str
    op: Op
    inputs: tuple[str, ...]
    attrs: Attrs
    shape: Shape
    params: Mapping[str, torch.Tensor] = field(default_factory=dict)

    def with_(self, **changes: object) -> Node:
        return replace(self, **changes)

    def num_params(self) -> int:
        return sum(int(p.numel()) for key, p in self.params.items() if key in TRAINABLE_PARAMS)


# Parameters that count as model parameters (BN running statistics are buffers).
TRAINABLE_PARAMS = frozenset({"weight", "bias"})


@dataclass(frozen=True)
class Graph:
    """An ordered list of nodes (each after its inputs) and the number of time steps T."""

    nodes: tuple[Node, ...]
    timesteps: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {n.name: n for n in self.nodes})

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes)

    def __getitem__(self, name: str) -> Node:
        return self._by_name[name]  # type: ignore[attr-defined]

    def __contains__(self, name: str) -> bool:
        return name in self._by_name  # type: ignore[attr-defined]

    @property
    def input(self) -> Node:
        return next(n for n in self.nodes if n.op is Op.INPUT)

    @property
    def output(self) -> Node:
        return next(n for n in self.nodes if n.op is Op.OUTPUT)

    def consumers(self, name: str) -> list[Node]:
        return [n for n in self.nodes if name in n.inputs]

    def downstream(self, name: str) -> list[Node]:
        """Every node that reads `name`, directly or through other nodes."""
        seen: dict[str, Node] = {}
        stack = [name]
        while stack:
            for reader in self.consumers(stack.pop()):
                if reader.name not in seen:
                    seen[reader.name] = reader
                    stack.append(reader.name)
        return list(seen.values())

    def of_op(self, *ops: Op) -> list[Node]:
        return [n for n in self.nodes if n.op in ops]

    def num_params(self) -> int:
        return sum(n.num_params() for n in self.nodes)

    def with_nodes(self, nodes: list[Node] | tuple[Node, ...]) -> Graph:
        return Graph(tuple(nodes), self.timesteps)
