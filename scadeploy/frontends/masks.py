"""Channel masks on a model: apply them SCA-style and draw random ones for tests and benchmarks.

A mask is a bool tensor over a prunable conv's output channels; True means the channel is kept.
"""

from __future__ import annotations

import torch
from torch import nn

from scadeploy.models.common import PrunableUnit


def prunable_units(model: nn.Module) -> list[PrunableUnit]:
    """The model's prunable Conv -> BN -> neuron units (reference models define them)."""
    units = getattr(model, "prunable_units", None)
    return units() if callable(units) else []


@torch.no_grad()
def apply_masks(model: nn.Module, masks: dict[str, torch.Tensor]) -> nn.Module:
    """Zero the conv filter, BN gamma and BN beta of every channel not kept (in place, SCA-style)."""
    modules = dict(model.named_modules())
    bn_of = {u.conv: u.bn for u in prunable_units(model)}
    for conv_name, keep in masks.items():
        pruned = ~keep.to(torch.bool)
        conv = modules[conv_name]
        conv.weight[pruned] = 0.0
        if conv.bias is not None:
            conv.bias[pruned] = 0.0
        bn = modules.get(bn_of.get(conv_name, ""))
        if bn is not None:
            bn.weight[pruned] = 0.0
            bn.bias[pruned] = 0.0
    return model


def random_masks(model: nn.Module, keep_ratio: float,
                 generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """Keep round(keep_ratio * C) random channels (at least one) of every prunable layer."""
    modules = dict(model.named_modules())
    masks = {}
    for unit in prunable_units(model):
        channels = modules[unit.conv].out_channels
        kept = max(1, round(keep_ratio * channels))
        order = torch.randperm(channels, generator=generator)
        mask = torch.zeros(channels, dtype=torch.bool)
        mask[order[:kept]] = True
        masks[unit.conv] = mask
    return masks


def full_masks(model: nn.Module) -> dict[str, torch.Tensor]:
    """Masks that keep every channel of every prunable layer."""
    modules = dict(model.named_modules())
    return {u.conv: torch.ones(modules[u.conv].out_channels, dtype=torch.bool) for u in prunable_units(model)}
