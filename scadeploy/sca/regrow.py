"""How a regrown channel restarts: from where the optimizer's momentum left it, or re-initialised.

A pruned channel's filter, BN gamma and BN beta are exactly zero, so its own gradients are exactly
zero too (see trainer.py): under the paper's rule ("momentum") a regrown channel starts from
whatever its momentum buffer moved it to since pruning, often close to zero, and may stay dead.
"reinit" gives it a fresh start instead: the filter drawn as torch initialises a new conv
(Kaiming-uniform, a = sqrt(5)), gamma 1, beta 0, BN statistics reset, and the momentum of those
rows cleared, as RigL (Evci et al., ICML 2020) and GraNet (Liu et al., NeurIPS 2021) restart the
connections they regrow.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from scadeploy.frontends.masks import prunable_units

REGROW_INITS = ("momentum", "reinit")


@torch.no_grad()
def reinit_channels(model: nn.Module, optimizer: torch.optim.Optimizer, regrown: dict[str, torch.Tensor],
                    generator: torch.Generator) -> int:
    """Re-initialise the filter and BN of every channel in `regrown` (conv name -> bool[C]); returns the count."""
    modules = dict(model.named_modules())
    bn_of = {u.conv: u.bn for u in prunable_units(model)}
    count = 0
    for conv_name, rows in regrown.items():
        rows = rows.to(torch.bool)
        n = int(rows.sum())
        if not n:
            continue
        count += n
        conv = modules[conv_name]
        fan_in = conv.weight[0].numel()
        bound = 1.0 / math.sqrt(fan_in)  # kaiming_uniform_(a=sqrt(5)) as nn.Conv2d.reset_parameters
        fresh = torch.rand((n, *conv.weight.shape[1:]), generator=generator, dtype=conv.weight.dtype) * 2 - 1
        conv.weight[rows] = (fresh * bound).to(conv.weight.device)
        touched = [conv.weight]
        if conv.bias is not None:
            conv.bias[rows] = 0.0
            touched.append(conv.bias)
        bn = modules.get(bn_of.get(conv_name, ""))
        if bn is not None:
            bn.weight[rows], bn.bias[rows] = 1.0, 0.0
            bn.running_mean[rows], bn.running_var[rows] = 0.0, 1.0
            touched += [bn.weight, bn.bias]
        for param in touched:
            buffer = optimizer.state.get(param, {}).get("momentum_buffer")
            if buffer is not None:
                buffer[rows] = 0.0
    return count
