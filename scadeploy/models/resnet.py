"""Spiking ResNet-18 for 32x32 inputs (CIFAR stem): residual adds of BN outputs before the neuron.

Only each basic block's internal channels (the first conv's outputs) are prunable, as in SCA;
the residual-sum widths stay dense.
"""

from __future__ import annotations

import torch
from spikingjelly.activation_based import layer
from torch import nn

from scadeploy.models.common import MeanOverTime, PrunableUnit, make_neuron

STAGE_WIDTHS = (64, 128, 256, 512)
BLOCKS_PER_STAGE = 2


class BasicBlock(nn.Module):
    """out = neuron(bn2(conv2(neuron(bn1(conv1(x))))) + shortcut(x))."""

    def __init__(self, in_channels: int, mid_channels: int, out_channels: int, stride: int,
                 neuron_args: dict) -> None:
        super().__init__()
        self.conv1 = layer.Conv2d(in_channels, mid_channels, 3, stride, 1, bias=False, step_mode="m")
        self.bn1 = layer.BatchNorm2d(mid_channels, step_mode="m")
        self.sn1 = make_neuron(**neuron_args)
        self.conv2 = layer.Conv2d(mid_channels, out_channels, 3, 1, 1, bias=False, step_mode="m")
        self.bn2 = layer.BatchNorm2d(out_channels, step_mode="m")
        self.shortcut = nn.Sequential()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                layer.Conv2d(in_channels, out_channels, 1, stride, bias=False, step_mode="m"),
                layer.BatchNorm2d(out_channels, step_mode="m"),
            )
        self.sn2 = make_neuron(**neuron_args)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(self.sn1(self.bn1(self.conv1(x)))))
        return self.sn2(out + self.shortcut(x))


class SpikingResNet(nn.Module):
    """ResNet-18 layout: 3x3 stem, four stages of two basic blocks, global average pool, linear."""

    def __init__(self, num_classes: int = 10, in_channels: int = 3, input_size: int = 32,
                 block_widths: list[int] | None = None, stage_widths: tuple[int, ...] = STAGE_WIDTHS,
                 neuron: str = "if", tau: float = 2.0, v_threshold: float = 1.0,
                 v_reset: float | None = 0.0) -> None:
        super().__init__()
        neuron_args = dict(kind=neuron, tau=tau, v_threshold=v_threshold, v_reset=v_reset)
        stage_widths = tuple(stage_widths)
        default_mid = [w for w in stage_widths for _ in range(BLOCKS_PER_STAGE)]
        mids = list(block_widths) if block_widths is not None else default_mid
        if len(mids) != len(default_mid):
            raise ValueError(f"block_widths needs {len(default_mid)} entries, got {len(mids)}")
        self.conv1 = layer.Conv2d(in_channels, stage_widths[0], 3, 1, 1, bias=False, step_mode="m")
        self.bn1 = layer.BatchNorm2d(stage_widths[0], step_mode="m")
        self.sn1 = make_neuron(**neuron_args)
        channels, size, index = stage_widths[0], input_size, 0
        self._units: list[PrunableUnit] = []
        for stage, width in enumerate(stage_widths, start=1):
            blocks = []
            for b in range(BLOCKS_PER_STAGE):
                stride = 2 if (stage > 1 and b == 0) else 1
                blocks.append(BasicBlock(channels, mids[index], width, stride, neuron_args))
                prefix = f"layer{stage}.{b}"
                self._units.append(PrunableUnit(f"{prefix}.conv1", f"{prefix}.bn1", f"{prefix}.sn1"))
                channels, size, index = width, size // stride, index + 1
            setattr(self, f"layer{stage}", nn.Sequential(*blocks))
        self.num_stages = len(stage_widths)
        self.pool = layer.AvgPool2d(size, size, step_mode="m")
        self.flatten = layer.Flatten(step_mode="m")
        self.mean = MeanOverTime()
        self.fc = nn.Linear(channels, num_classes)

    def prunable_units(self) -> list[PrunableUnit]:
        return list(self._units)

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        x = self.sn1(self.bn1(self.conv1(x_seq)))
        for stage in range(1, self.num_stages + 1):
            x = getattr(self, f"layer{stage}")(x)
        return self.fc(self.mean(self.flatten(self.pool(x))))


def resnet18(**kwargs) -> SpikingResNet:
    return SpikingResNet(**kwargs)
