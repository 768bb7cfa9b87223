"""Building blocks shared by the reference models: neuron factory, conv-BN-neuron unit, time mean."""

from __future__ import annotations

from collections import OrderedDict
from typing import NamedTuple

import torch
from spikingjelly.activation_based import base, layer, neuron, surrogate
from torch import nn

from scadeploy.errors import UnsupportedError

NEURON_KINDS = ("if", "lif")


class PrunableUnit(NamedTuple):
    """Module names of one prunable Conv -> BN -> neuron unit; masks are keyed by `conv`."""

    conv: str
    bn: str
    neuron: str


def make_neuron(kind: str = "if", tau: float = 2.0, v_threshold: float = 1.0,
                v_reset: float | None = 0.0) -> base.MemoryModule:
    """A multi-step spikingjelly neuron with the SCA training defaults (sigmoid surrogate, alpha 4)."""
    common = dict(
        v_threshold=v_threshold,
        v_reset=v_reset,
        surrogate_function=surrogate.Sigmoid(alpha=4.0),
        detach_reset=True,
        step_mode="m",
        store_v_seq=True,
    )
    if kind == "if":
        return neuron.IFNode(**common)
    if kind == "lif":
        return neuron.LIFNode(tau=tau, decay_input=True, **common)
    raise UnsupportedError(f"unknown neuron kind '{kind}'", f"choose one of {', '.join(NEURON_KINDS)}")


class MeanOverTime(nn.Module, base.StepModule):
    """Multi-step: [T, N, ...] -> [N, ...] by the mean over time. Single-step: identity.

    Marks where a model averages its spikes over time, so the frontend can place `mean_over_time`.
    """

    def __init__(self, step_mode: str = "m") -> None:
        super().__init__()
        self.step_mode = step_mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(0) if self.step_mode == "m" else x


def conv_bn_neuron(prefix: str, in_channels: int, out_channels: int, neuron_args: dict,
                   stride: int = 1) -> OrderedDict[str, nn.Module]:
    """Named modules `{prefix}conv`, `{prefix}bn`, `{prefix}sn`: 3x3 conv (no bias), BN, neuron."""
    return OrderedDict(
        [
            (f"conv{prefix}", layer.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False, step_mode="m")),
            (f"bn{prefix}", layer.BatchNorm2d(out_channels, step_mode="m")),
            (f"sn{prefix}", make_neuron(**neuron_args)),
        ]
    )


@torch.no_grad()
def randomize_batchnorm(model: nn.Module, generator: torch.Generator) -> nn.Module:
    """BN statistics and affine parameters that make untrained neurons fire at varied rates.

    For tests and benchmarks on random weights, where default BN (identity) would leave most
    neurons silent and every comparison trivially equal.
    """
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            c = module.num_features
            module.running_mean.copy_(torch.rand(c, generator=generator) * 0.4 - 0.2)
            module.running_var.copy_(torch.rand(c, generator=generator) * 1.5 + 0.5)
            module.weight.copy_(torch.rand(c, generator=generator) * 1.5 + 0.5)
            module.bias.copy_(torch.rand(c, generator=generator) * 0.4 - 0.1)
    return model
