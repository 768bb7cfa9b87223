"""Property test: on random small conv SNNs with random masks, stripping is exact and conservative."""

from __future__ import annotations

from collections import OrderedDict

import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from spikingjelly.activation_based import layer
from torch import nn

from scadeploy.frontends.masks import apply_masks
from scadeploy.frontends.trace import trace_model
from scadeploy.ir.passes.strip_channels import strip_channels
from scadeploy.models import MeanOverTime, PrunableUnit, make_neuron
from scadeploy.parity import compare_stripped


class RandomNet(nn.Module):
    def __init__(self, widths: list[int], pools: list[str], neuron: str, size: int) -> None:
        super().__init__()
        modules: OrderedDict[str, nn.Module] = OrderedDict()
        channels = 2
        self.units = []
        for i, (width, pool) in enumerate(zip(widths, pools, strict=True)):
            modules[f"conv{i}"] = layer.Conv2d(channels, width, 3, 1, 1, bias=False, step_mode="m")
            modules[f"bn{i}"] = layer.BatchNorm2d(width, step_mode="m")
            modules[f"sn{i}"] = make_neuron(neuron)
            self.units.append(PrunableUnit(f"body.conv{i}", f"body.bn{i}", f"body.sn{i}"))
            if pool == "max":
                modules[f"pool{i}"] = layer.MaxPool2d(2, 2, step_mode="m")
                size //= 2
            elif pool == "avg":
                modules[f"pool{i}"] = layer.AvgPool2d(2, 2, step_mode="m")
                size //= 2
            channels = width
        modules["flatten"] = layer.Flatten(step_mode="m")
        self.body = nn.Sequential(modules)
        self.mean = MeanOverTime()
        self.head = nn.Linear(channels * size * size, 3)

    def prunable_units(self) -> list[PrunableUnit]:
        return self.units

    def forward(self, x):
        return self.head(self.mean(self.body(x)))


@settings(max_examples=25, deadline=None)
@given(
    widths=st.lists(st.integers(1, 6), min_size=1, max_size=3),
    pools=st.lists(st.sampled_from(["none", "max", "avg"]), min_size=3, max_size=3),
    neuron=st.sampled_from(["if", "lif"]),
    timesteps=st.integers(1, 5),
    seed=st.integers(0, 10_000),
)
def test_random_nets_strip_exactly(widths, pools, neuron, timesteps, seed) -> None:
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = RandomNet(widths, pools[: len(widths)], neuron, size=8).eval()
    masks = {u.conv: torch.rand(w, generator=generator) < 0.6 for u, w in zip(model.units, widths, strict=True)}
    apply_masks(model, masks)
    modules = dict(model.named_modules())
    with torch.no_grad():  # some masked channels get a BN beta that may or may not make them fire
        for unit in model.units:
            bn = modules[unit.bn]
            bn.bias.copy_(torch.rand(bn.num_features, generator=generator) * 0.8 - 0.2)
    graph = trace_model(model, (2, 8, 8), timesteps)
    stripped, report = strip_channels(graph, masks)

    x = torch.rand(3, 2, 8, 8, generator=generator) * 2
    assert compare_stripped(graph, stripped, report.kept_index, x).exact
    masked_total = sum(int((~m).sum()) for m in masks.values())
    assert report.removed + len(report.kept) == masked_total
    assert all(k.reason for k in report.kept)
    for row in report.layers:
        if row.layer in masks:
            assert row.after >= int(masks[row.layer].sum())
