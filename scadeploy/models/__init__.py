"""Reference SNN architectures built from spikingjelly 2.0 multi-step layers, by name."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from scadeploy.errors import UnsupportedError
from scadeploy.models.common import NEURON_KINDS, MeanOverTime, PrunableUnit, make_neuron, randomize_batchnorm
from scadeploy.models.digits import digits_net
from scadeploy.models.resnet import resnet18
from scadeploy.models.vgg import vgg16, vgg_mnist, vgg_mnist_wide

MODELS: dict[str, Callable[..., nn.Module]] = {
    "digits": digits_net,
    "vgg16": vgg16,
    "vgg_mnist": vgg_mnist,
    "vgg_mnist_wide": vgg_mnist_wide,
    "resnet18": resnet18,
}

# The constructor argument that takes the widths of the prunable units, in prunable_units() order.
MODEL_WIDTH_ARG: dict[str, str] = {"digits": "widths", "vgg16": "widths", "vgg_mnist": "widths",
                                   "vgg_mnist_wide": "widths",
                                   "resnet18": "block_widths"}


def build_model(name: str, **kwargs) -> nn.Module:
    """Instantiate a reference model; unknown names list the known ones."""
    if name not in MODELS:
        raise UnsupportedError(f"unknown model '{name}'", f"choose one of {', '.join(MODELS)}")
    try:
        return MODELS[name](**kwargs)
    except (TypeError, ValueError) as exc:
        raise UnsupportedError(f"cannot build model '{name}' with {kwargs}: {exc}") from exc


def encode_direct(images: torch.Tensor, timesteps: int) -> torch.Tensor:
    """Direct encoding: the analog frame [N, ...] repeated at every step -> [T, N, ...]."""
    return images.unsqueeze(0).expand(timesteps, *images.shape)


__all__ = ["MODELS", "MODEL_WIDTH_ARG", "NEURON_KINDS", "MeanOverTime", "PrunableUnit", "build_model", "encode_direct",
           "make_neuron", "randomize_batchnorm"]
