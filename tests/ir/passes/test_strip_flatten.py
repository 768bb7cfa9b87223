"""Channel-wise ops right after a flatten act per feature: channel c owns features [c*H*W, (c+1)*H*W)."""

from __future__ import annotations

import pytest
import torch
from spikingjelly.activation_based import layer
from tolerances import STRIP_LOGIT_ATOL
from torch import nn

from scadeploy.backends.torch_ref import run_graph
from scadeploy.frontends.trace import trace_model
from scadeploy.ir.passes.strip_channels import strip_channels
from scadeploy.models import MeanOverTime, make_neuron
from scadeploy.parity import compare_stripped

SHAPE = (2, 4, 4)
WIDTH = 4
MASKED = 1  # the masked channel: features [16, 32) after the flatten
MASK = torch.tensor([True, False, True, True])


class FlatNet(nn.Module):
    """conv(s) -> BN -> IF -> flatten -> [BN1d] -> [add of two branches] -> IF -> mean -> linear."""

    def __init__(self, bn1d: bool, add: bool) -> None:
        super().__init__()
        self.add = add
        self.branches = nn.ModuleList(nn.Sequential(
            layer.Conv2d(SHAPE[0], WIDTH, 3, 1, 1, bias=False, step_mode="m"),
            layer.BatchNorm2d(WIDTH, step_mode="m"), make_neuron("if"), layer.Flatten(step_mode="m"))
            for _ in range(2 if add else 1))
        features = WIDTH * SHAPE[1] * SHAPE[2]
        self.bn1d = layer.BatchNorm1d(features, step_mode="m") if bn1d else nn.Identity()
        self.sn = make_neuron("if")
        self.mean = MeanOverTime()
        self.head = nn.Linear(features, 3)

    def forward(self, x):
        flat = [branch(x) for branch in self.branches]
        y = flat[0] + flat[1] if self.add else flat[0]
        return self.head(self.mean(self.sn(self.bn1d(y))))


def masked_flat_net(bn1d: bool, add: bool) -> tuple[nn.Module, dict[str, torch.Tensor]]:
    """A FlatNet with realistic BN statistics, channel MASKED zeroed in every conv and BN (per feature in BN1d)."""
    torch.manual_seed(0)
    model = FlatNet(bn1d, add).eval()
    block = SHAPE[1] * SHAPE[2]
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm1d | nn.BatchNorm2d):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 1.5)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(0.0, 0.3)
            if isinstance(module, nn.BatchNorm2d):
                module.weight[MASKED] = module.bias[MASKED] = 0.0
            if isinstance(module, nn.BatchNorm1d):
                module.weight[MASKED * block:(MASKED + 1) * block] = 0.0
                module.bias[MASKED * block:(MASKED + 1) * block] = 0.0
            if isinstance(module, nn.Conv2d):
                module.weight[MASKED] = 0.0
    masks = {name: MASK for name, m in model.named_modules() if isinstance(m, nn.Conv2d)}
    return model, masks


@pytest.mark.parametrize(("bn1d", "add"), [(True, False), (False, False), (False, True), (True, True)])
def test_channel_wise_ops_after_flatten_strip_exactly(bn1d: bool, add: bool):
    model, masks = masked_flat_net(bn1d, add)
    graph = trace_model(model, SHAPE, timesteps=4)
    stripped, report = strip_channels(graph, masks)

    assert report.kept == []
    assert all(stripped[name].shape[0] == WIDTH - 1 for name in masks)
    assert stripped["head"].params["weight"].shape[1] == (WIDTH - 1) * SHAPE[1] * SHAPE[2]
    if bn1d:
        assert stripped["bn1d"].attrs.num_features == (WIDTH - 1) * SHAPE[1] * SHAPE[2]
    x = torch.rand(4, *SHAPE, generator=torch.Generator().manual_seed(1)) * 2
    parity = compare_stripped(graph, stripped, report.kept_index, x)
    assert parity.exact and parity.float64.spikes_compared > 0
    assert run_graph(graph, x, record=True).spikes["sn"].mean() > 0.05  # the comparison is not vacuous
    assert torch.allclose(run_graph(graph, x).logits, run_graph(stripped, x).logits, atol=STRIP_LOGIT_ATOL, rtol=0)


def test_bn1d_after_flatten_that_drives_a_masked_channel_keeps_it():
    """A BN1d beta on one feature of the masked channel makes that feature fire: the channel must stay."""
    model, masks = masked_flat_net(bn1d=True, add=False)
    with torch.no_grad():
        model.bn1d.bias[MASKED * SHAPE[1] * SHAPE[2] + 3] = 0.6  # IF reaches 1.2 >= 1 at t=2
    graph = trace_model(model, SHAPE, timesteps=4)
    stripped, report = strip_channels(graph, masks)
    assert [(k.layer, k.channel) for k in report.kept] == [("branches.0.0", MASKED)]
    assert stripped["bn1d"].attrs.num_features == WIDTH * SHAPE[1] * SHAPE[2]
    assert compare_stripped(graph, stripped, report.kept_index, torch.rand(3, *SHAPE)).exact
