"""Users' own networks, defined outside scadeploy.models, for the bring-your-own-model tests."""

from __future__ import annotations

import torch
from spikingjelly.activation_based import layer, neuron
from torch import nn


class ResidualBlock(nn.Module):
    """conv-BN-LIF-conv-BN plus a 1x1 conv shortcut, summed before the second LIF."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv1 = layer.Conv2d(cin, cout, 3, padding=1, bias=False, step_mode="m")
        self.bn1 = layer.BatchNorm2d(cout, step_mode="m")
        self.lif1 = neuron.LIFNode(tau=2.0, step_mode="m")
        self.conv2 = layer.Conv2d(cout, cout, 3, padding=1, bias=False, step_mode="m")
        self.bn2 = layer.BatchNorm2d(cout, step_mode="m")
        self.shortcut = layer.Conv2d(cin, cout, 1, bias=False, step_mode="m")
        self.shortcut_bn = layer.BatchNorm2d(cout, step_mode="m")
        self.lif2 = neuron.LIFNode(tau=2.0, step_mode="m")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(self.lif1(self.bn1(self.conv1(x)))))
        return self.lif2(out + self.shortcut_bn(self.shortcut(x)))


class OwnNet(nn.Module):
    """Stem, a residual block, average pooling, dropout and a per-step linear head (averaged outside)."""

    def __init__(self, in_channels: int = 1, classes: int = 10) -> None:
        super().__init__()
        self.stem = layer.Conv2d(in_channels, 8, 3, padding=1, bias=False, step_mode="m")
        self.stem_bn = layer.BatchNorm2d(8, step_mode="m")
        self.stem_lif = neuron.LIFNode(tau=2.0, step_mode="m")
        self.block = ResidualBlock(8, 16)
        self.pool = layer.AvgPool2d(2, 2, step_mode="m")
        self.flatten = layer.Flatten(step_mode="m")
        self.dropout = layer.Dropout(0.2, step_mode="m")
        self.head = layer.Linear(16 * 4 * 4, classes, step_mode="m")

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:  # [T, N, C, 8, 8] -> per-step logits [T, N, K]
        x = self.stem_lif(self.stem_bn(self.stem(x_seq)))
        return self.head(self.dropout(self.flatten(self.pool(self.block(x)))))


class EventNet(nn.Module):
    """A DVS-style network: two-polarity spike input, IF neurons, max pooling, a per-step linear head."""

    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.conv1 = layer.Conv2d(2, 8, 3, padding=1, bias=False, step_mode="m")
        self.bn1 = layer.BatchNorm2d(8, step_mode="m")
        self.if1 = neuron.IFNode(step_mode="m")
        self.pool = layer.MaxPool2d(2, 2, step_mode="m")
        self.conv2 = layer.Conv2d(8, 16, 3, padding=1, bias=False, step_mode="m")
        self.bn2 = layer.BatchNorm2d(16, step_mode="m")
        self.if2 = neuron.IFNode(step_mode="m")
        self.flatten = layer.Flatten(step_mode="m")
        self.head = layer.Linear(16 * 4 * 4, classes, step_mode="m")

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:  # [T, N, 2, 8, 8] events -> [T, N, K]
        x = self.pool(self.if1(self.bn1(self.conv1(x_seq))))
        x = self.flatten(self.if2(self.bn2(self.conv2(x))))
        return self.head(x)  # per-step logits; the training loop averages them over time


def build() -> nn.Module:
    return OwnNet()


def build_events() -> nn.Module:
    return EventNet()


def build_broken() -> nn.Module:
    raise RuntimeError("this factory always fails")


def build_not_a_module() -> object:
    return {"not": "a module"}


NOT_CALLABLE = 42
