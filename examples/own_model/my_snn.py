"""A user's own spikingjelly network for event-camera input: nothing here knows about scadeploy.

    scadeploy compile weights.pt --model examples/own_model/my_snn.py:build --data events.npz ...
"""

from __future__ import annotations

import torch
from spikingjelly.activation_based import layer, neuron
from torch import nn


class DvsNet(nn.Module):
    """Two-polarity events [T, N, 2, 8, 8] -> per-step class scores [T, N, 10] (averaged by the training loop)."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        self.features = nn.Sequential(
            layer.Conv2d(2, width, 3, padding=1, bias=False),
            layer.BatchNorm2d(width),
            neuron.LIFNode(tau=2.0, detach_reset=True),
            layer.MaxPool2d(2, 2),
            layer.Conv2d(width, 2 * width, 3, padding=1, bias=False),
            layer.BatchNorm2d(2 * width),
            neuron.LIFNode(tau=2.0, detach_reset=True),
            layer.AvgPool2d(2, 2),
            layer.Flatten(),
            layer.Dropout(0.25),
        )
        self.classifier = layer.Linear(2 * width * 2 * 2, 10)

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x_seq))


def build() -> nn.Module:
    from spikingjelly.activation_based import functional

    model = DvsNet()
    functional.set_step_mode(model, "m")
    return model
