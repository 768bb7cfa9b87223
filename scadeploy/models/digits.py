"""A small conv SNN for 8x8 single-channel digits: fast enough for every backend in seconds."""

from __future__ import annotations

from collections import OrderedDict

import torch
from spikingjelly.activation_based import layer
from torch import nn

from scadeploy.models.common import MeanOverTime, PrunableUnit, conv_bn_neuron

DIGITS_WIDTHS = (16, 32, 32)


class DigitsNet(nn.Module):
    """conv16-conv32-pool-conv32-pool-flatten, time mean, linear. All three convs are prunable."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1, input_size: int = 8,
                 widths: list[int] | None = None, neuron: str = "if", tau: float = 2.0,
                 v_threshold: float = 1.0, v_reset: float | None = 0.0) -> None:
        super().__init__()
        neuron_args = dict(kind=neuron, tau=tau, v_threshold=v_threshold, v_reset=v_reset)
        w1, w2, w3 = list(widths) if widths is not None else DIGITS_WIDTHS
        modules: OrderedDict[str, nn.Module] = OrderedDict()
        modules.update(conv_bn_neuron("1", in_channels, w1, neuron_args))
        modules.update(conv_bn_neuron("2", w1, w2, neuron_args))
        modules["pool1"] = layer.MaxPool2d(2, 2, step_mode="m")
        modules.update(conv_bn_neuron("3", w2, w3, neuron_args))
        modules["pool2"] = layer.MaxPool2d(2, 2, step_mode="m")
        modules["flatten"] = layer.Flatten(step_mode="m")
        self.features = nn.Sequential(modules)
        self.mean = MeanOverTime()
        self.head = nn.Linear(w3 * (input_size // 4) ** 2, num_classes)

    def prunable_units(self) -> list[PrunableUnit]:
        return [PrunableUnit(f"features.conv{i}", f"features.bn{i}", f"features.sn{i}") for i in (1, 2, 3)]

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        return self.head(self.mean(self.features(x_seq)))


def digits_net(**kwargs) -> DigitsNet:
    return DigitsNet(**kwargs)
