"""strip_channels through SEW products and complements: a stripped graph computes what the masked one does."""

from __future__ import annotations

import pytest
import torch
from spikingjelly.activation_based import layer, neuron
from torch import nn

from scadeploy.frontends.trace import trace_model
from scadeploy.ir.graph import Op
from scadeploy.ir.passes.channel_groups import find_channel_groups
from scadeploy.ir.passes.silence import find_known_channels
from scadeploy.ir.passes.strip_channels import strip_channels
from scadeploy.models import randomize_batchnorm
from scadeploy.parity import compare_stripped

SHAPE = (2, 6, 6)
WIDTH = 4
MASKED = 2


class SewBlock(nn.Module):
    """stem conv-BN-IF (x), a block conv-BN-IF-conv-BN-IF (out), x combined with out by `cnf`, then
    conv-BN-IF -> flatten -> linear (a per-step head). `NOT` feeds 1 - out to the last conv directly, `SCALE`
    out * 2.74 (OTTT's Scale)."""

    def __init__(self, cnf: str) -> None:
        super().__init__()
        self.cnf = cnf
        self.stem, self.stem_bn, self.stem_sn = self._unit(SHAPE[0])
        self.conv1, self.bn1, self.sn1 = self._unit(WIDTH)
        self.conv2, self.bn2, self.sn2 = self._unit(WIDTH)
        self.conv3, self.bn3, self.sn3 = self._unit(WIDTH)
        self.fc = layer.Linear(WIDTH * SHAPE[1] * SHAPE[2], 3)

    @staticmethod
    def _unit(channels: int) -> tuple[nn.Module, nn.Module, nn.Module]:
        return layer.Conv2d(channels, WIDTH, 3, padding=1, bias=False), layer.BatchNorm2d(WIDTH), neuron.IFNode()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem_sn(self.stem_bn(self.stem(x)))
        out = self.sn2(self.bn2(self.conv2(self.sn1(self.bn1(self.conv1(x))))))
        joined = {"AND": lambda: x * out, "IAND": lambda: x * (1.0 - out), "NOT": lambda: 1.0 - out,
                  "SCALE": lambda: out * 2.74}[self.cnf]()
        return self.fc(torch.flatten(self.sn3(self.bn3(self.conv3(joined))), 1))


def _masked(cnf: str, masked_in: tuple[str, ...]) -> tuple[nn.Module, dict[str, torch.Tensor]]:
    """The model with channel MASKED zeroed SCA-style (filter, gamma and beta) in the `masked_in` convs."""
    torch.manual_seed(0)
    model = randomize_batchnorm(SewBlock(cnf), torch.Generator().manual_seed(0)).eval()
    masks = {}
    with torch.no_grad():
        for conv in masked_in:
            getattr(model, conv).weight[MASKED] = 0.0
            bn = getattr(model, {"stem": "stem_bn"}.get(conv, conv.replace("conv", "bn")))
            bn.weight[MASKED] = bn.bias[MASKED] = 0.0
            masks[conv] = torch.arange(WIDTH) != MASKED
    return model, masks


def _strip(cnf: str, masked_in: tuple[str, ...]):
    model, masks = _masked(cnf, masked_in)
    graph = trace_model(model, SHAPE, timesteps=4)
    stripped, report = strip_channels(graph, masks)
    x = torch.rand(8, *SHAPE, generator=torch.Generator().manual_seed(1)) * 2
    parity = compare_stripped(graph, stripped, report.kept_index, x)
    assert parity.exact and parity.float64.spikes_compared > 0
    return graph, stripped, report


@pytest.mark.parametrize("cnf", ["AND", "IAND"])
def test_a_channel_masked_in_both_factors_is_removed(cnf: str) -> None:
    graph, stripped, report = _strip(cnf, ("stem", "conv2"))
    assert report.kept == []
    assert stripped["stem"].shape[0] == stripped["conv2"].shape[0] == WIDTH - 1
    assert stripped["conv3"].attrs.in_channels == WIDTH - 1
    product = graph.of_op(Op.MUL)[0].name
    assert stripped[product].shape[0] == WIDTH - 1


def test_a_zero_factor_silences_the_product_in_the_certificate() -> None:
    """x * y is an exact zero where x is, even though y is unknown (it depends on the input)."""
    model, _ = _masked("AND", ("stem",))
    graph = trace_model(model, SHAPE, timesteps=4)
    known = find_known_channels(graph, find_channel_groups(graph))
    product = graph.of_op(Op.MUL)[0].name
    assert not known["sn2"].known[MASKED] and known["stem_sn"].zero()[MASKED]
    assert known[product].zero()[MASKED] and int(known[product].zero().sum()) == 1


@pytest.mark.parametrize("cnf", ["AND", "IAND"])
@pytest.mark.parametrize("masked_in", [("stem",), ("conv2",)])
def test_a_channel_masked_in_one_factor_is_kept_and_exact(cnf: str, masked_in: tuple[str, ...]) -> None:
    """The product ties both factors' channels: masked in one producer only, the channel stays (reported)."""
    _, stripped, report = _strip(cnf, masked_in)
    assert [(k.layer, k.channel) for k in report.kept] == [(masked_in[0], MASKED)]
    assert report.kept[0].reason.startswith("residual group: not masked in")
    assert stripped["conv3"].attrs.in_channels == WIDTH


def test_a_complement_of_a_silent_channel_is_one_so_the_channel_stays() -> None:
    """1 - 0 = 1 reaches conv3: removing the channel would change conv3's output."""
    _, stripped, report = _strip("NOT", ("conv2",))
    assert [(k.layer, k.channel) for k in report.kept] == [("conv2", MASKED)]
    assert report.kept[0].reason.startswith("not silent") and "1" in report.kept[0].reason
    assert stripped["conv2"].shape[0] == WIDTH


def test_a_scaled_silent_channel_is_still_zero_and_removed() -> None:
    _, stripped, report = _strip("SCALE", ("conv2",))
    assert report.kept == [] and stripped["conv2"].shape[0] == WIDTH - 1
    assert stripped["conv3"].attrs.in_channels == WIDTH - 1
