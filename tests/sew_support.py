"""SEW ResNets from spikingjelly's own model code, full width (sew_resnet18) or narrow (the same SEWResNet
class and BasicBlock, its stem and stages rebuilt with `_make_layer` at small widths), for fast tests."""

from __future__ import annotations

import torch
from spikingjelly.activation_based import layer, neuron
from spikingjelly.activation_based.model import sew_resnet
from torch import nn

from scadeploy.models import randomize_batchnorm

CONNECTIONS = ("ADD", "AND", "IAND")


def sew_resnet18(cnf: str, seed: int = 0) -> nn.Module:
    """spikingjelly's sew_resnet18 with IF neurons and 10 classes, with varied BN statistics (eval mode)."""
    torch.manual_seed(seed)
    model = sew_resnet.sew_resnet18(cnf=cnf, spiking_neuron=neuron.IFNode, num_classes=10)
    return randomize_batchnorm(model, torch.Generator().manual_seed(seed)).eval()


def narrow_sew_resnet(cnf: str, widths: tuple[int, ...] = (8, 16, 16, 16), blocks: tuple[int, ...] = (2, 2, 1, 1),
                      seed: int = 0, v_threshold: float = 0.3) -> nn.Module:
    """SEWResNet(BasicBlock) whose stem and four stages have `widths` channels and `blocks` blocks each; IF
    neurons with `v_threshold` (a lower one keeps products of spikes alive deep into an AND network)."""
    torch.manual_seed(seed)
    model = sew_resnet.SEWResNet(sew_resnet.BasicBlock, [1, 1, 1, 1], num_classes=10, cnf=cnf,
                                 spiking_neuron=neuron.IFNode, v_threshold=v_threshold)
    model.inplanes = widths[0]
    model.conv1 = layer.Conv2d(3, widths[0], kernel_size=7, stride=2, padding=3, bias=False)
    model.bn1 = layer.BatchNorm2d(widths[0])
    for i, (width, count) in enumerate(zip(widths, blocks, strict=True)):
        stage = model._make_layer(sew_resnet.BasicBlock, width, count, stride=1 if i == 0 else 2, cnf=cnf,
                                  spiking_neuron=neuron.IFNode, v_threshold=v_threshold)
        setattr(model, f"layer{i + 1}", stage)
    model.fc = layer.Linear(widths[-1], 10)
    return randomize_batchnorm(model, torch.Generator().manual_seed(seed)).eval()


def frames(shape: tuple[int, ...], count: int, seed: int = 0) -> torch.Tensor:
    """Inputs in [0, 2] on a 1/16 grid (exact as Loihi's graded messages), bright enough to drive spikes deep."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 33, (count, *shape), generator=generator).float() / 16.0
