"""Spiking VGG-16-BN for 32x32 inputs, as in the SCA paper: 13 prunable conv units, 3 linear layers."""

from __future__ import annotations

from collections import OrderedDict

import torch
from spikingjelly.activation_based import layer
from torch import nn

from scadeploy.models.common import MeanOverTime, PrunableUnit, conv_bn_neuron, make_neuron

VGG16_CONFIG: tuple[int | str, ...] = (
    64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M",
)


class SpikingVGG(nn.Module):
    """VGG with BN and IF/LIF neurons; the classifier reads the time-mean of the last spikes."""

    def __init__(self, num_classes: int = 10, in_channels: int = 3, input_size: int = 32,
                 widths: list[int] | None = None, hidden: int = 512, neuron: str = "if",
                 tau: float = 2.0, v_threshold: float = 1.0, v_reset: float | None = 0.0,
                 config: tuple[int | str, ...] = VGG16_CONFIG) -> None:
        super().__init__()
        neuron_args = dict(kind=neuron, tau=tau, v_threshold=v_threshold, v_reset=v_reset)
        default_widths = [c for c in config if c != "M"]
        widths = list(widths) if widths is not None else default_widths
        if len(widths) != len(default_widths):
            raise ValueError(f"widths needs {len(default_widths)} entries, got {len(widths)}")
        modules: OrderedDict[str, nn.Module] = OrderedDict()
        channels, size, conv_index, pool_index = in_channels, input_size, 0, 0
        self._units: list[PrunableUnit] = []
        for item in config:
            if item == "M":
                pool_index += 1
                modules[f"pool{pool_index}"] = layer.MaxPool2d(2, 2, step_mode="m")
                size //= 2
                continue
            conv_index += 1
            modules.update(conv_bn_neuron(str(conv_index), channels, widths[conv_index - 1], neuron_args))
            self._units.append(PrunableUnit(f"features.conv{conv_index}", f"features.bn{conv_index}",
                                            f"features.sn{conv_index}"))
            channels = widths[conv_index - 1]
        modules["flatten"] = layer.Flatten(step_mode="m")
        self.features = nn.Sequential(modules)
        self.classifier = nn.Sequential(OrderedDict([
            ("fc1", layer.Linear(channels * size * size, hidden, bias=False, step_mode="m")),
            ("bn1", layer.BatchNorm1d(hidden, step_mode="m")),
            ("sn1", make_neuron(**neuron_args)),
            ("fc2", layer.Linear(hidden, hidden, bias=False, step_mode="m")),
            ("bn2", layer.BatchNorm1d(hidden, step_mode="m")),
            ("sn2", make_neuron(**neuron_args)),
        ]))
        self.mean = MeanOverTime()
        self.head = nn.Linear(hidden, num_classes)

    def prunable_units(self) -> list[PrunableUnit]:
        return list(self._units)

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        """[T, N, C, H, W] -> logits [N, classes]."""
        return self.head(self.mean(self.classifier(self.features(x_seq))))


def vgg16(**kwargs) -> SpikingVGG:
    return SpikingVGG(**kwargs)


# 28x28 inputs: conv at 28, pool, two convs at 14, pool, two at 7, pool, one at 3 -> 6 prunable convs.
VGG_MNIST_CONFIG: tuple[int | str, ...] = (8, "M", 16, 16, "M", 32, 32, "M", 32)
VGG_MNIST_HIDDEN = 128


def vgg_mnist(**kwargs) -> SpikingVGG:
    """A VGG-style spiking net for 28x28 grey images: 6 prunable conv units (8-16-16-32-32-32), hidden 128.

    Sized so one SCA run on mnist5k (8 epochs of 4,000 images, T=4) takes 2-3 minutes on one CPU
    thread: pooling right after the first conv keeps the 28x28 stage at one layer, and widths of
    16-32-32-64-64-64 measured 0.4-0.6 s a batch against 0.25-0.35 s here, which would put a run
    past 5 minutes. The depth (6 prunable layers, each fed by a pruned one) is what tests the
    global ranking.
    """
    kwargs.setdefault("config", VGG_MNIST_CONFIG)
    kwargs.setdefault("hidden", VGG_MNIST_HIDDEN)
    kwargs.setdefault("in_channels", 1)
    kwargs.setdefault("input_size", 28)
    return SpikingVGG(**kwargs)


VGG_MNIST_WIDE_CONFIG: tuple[int | str, ...] = (32, "M", 32, 64, "M", 64, 128, "M", 128)


def vgg_mnist_wide(**kwargs) -> SpikingVGG:
    """vgg_mnist at 4x its channels on average (32-32-64-64-128-128, hidden 256): room for pruning to pay.

    The narrow model is not over-parameterised for mnist5k (dense 96.7%; at keep 0.1 it keeps 1-3
    channels a layer), so pruning it mostly measures how a starved network trains. This one trains
    an epoch of mnist5k in about 15 s on two CPU threads.
    """
    kwargs.setdefault("config", VGG_MNIST_WIDE_CONFIG)
    kwargs.setdefault("hidden", 2 * VGG_MNIST_HIDDEN)
    return vgg_mnist(**kwargs)
