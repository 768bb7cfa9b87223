"""`scadeploy.compile` checks what it is given as the CLI checks files: same errors, same one-line messages."""

from __future__ import annotations

import pytest
import torch
from spikingjelly.activation_based import layer, neuron
from torch import nn

import scadeploy
from scadeploy.errors import DataError, MaskError, ModelError


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(layer.Conv2d(1, 4, 3, padding=1), layer.BatchNorm2d(4), neuron.IFNode(),
                         layer.Flatten(), layer.Linear(64, 3)).eval()


def _zeroed(net: nn.Module, pruned: list[int]) -> nn.Module:
    with torch.no_grad():
        for c in pruned:
            net[0].weight[c] = 0
            net[0].bias[c] = 0
            net[1].weight[c] = 0
            net[1].bias[c] = 0
    return net


X = torch.rand(3, 1, 4, 4)


@pytest.mark.parametrize("mask", [torch.tensor([1, 0, 1, 1]), torch.tensor([1.0, 0.0, 1.0, 1.0]),
                                  torch.tensor([True, False, True, True]),
                                  torch.tensor([1, 0, 1, 1], dtype=torch.uint8)])
def test_zero_one_masks_of_any_dtype_strip_one_channel(mask):
    result = scadeploy.compile(_zeroed(_net(), [1]), {"0": mask}, X, 4)
    (row,) = [r for r in result.report.layers if r.layer == "0"]
    assert row.masked == 1 and result.stripped["0"].shape[0] == 3
    assert result.parity.exact


@pytest.mark.parametrize(("masks", "message"), [
    ({"conv9": torch.ones(4)}, "masks name layers the model does not have: conv9"),
    ({"0": torch.ones(5)}, r"mask '0' has shape \(5,\), expected \(4,\)"),
    ({"0": torch.tensor([1, 2, 1, 1])}, "holds values other than 0 and 1"),
    ({"0": torch.zeros(4)}, "removes every channel"),
    ({"0": [1, 0, 1, 1]}, r"mask '0' has shape list"),
    ([torch.ones(4)], "masks must be a dict"),
])
def test_bad_masks_are_one_mask_error(masks, message):
    with pytest.raises(MaskError, match=message):
        scadeploy.compile(_net(), masks, X, 4)


@pytest.mark.parametrize(("x", "timesteps", "encoding", "message"), [
    (torch.rand(1, 4, 4), 4, "direct", r"needs rank 4 \[N, C, H, W\]"),
    (torch.rand(4, 3, 1, 4, 4), 4, "direct", "pass encoding='sequence'"),
    (torch.rand(3, 3, 1, 4, 4), 4, "sequence", "has 3 time steps, but timesteps=4"),
    (torch.full((3, 1, 4, 4), float("nan")), 4, "direct", "NaN or infinite"),
    (torch.rand(0, 1, 4, 4), 4, "direct", "holds no values"),
    (torch.rand(3, 1, 4, 4, dtype=torch.complex64), 4, "direct", "complex64"),
    ([[0.0]], 4, "direct", "must be a dense torch.Tensor"),
    (X, 0, "direct", "timesteps must be an integer in 1..1024"),
    (X, True, "direct", "timesteps must be an integer"),
    (X, 2.0, "direct", "timesteps must be an integer"),
    (X, 4, "frames", "encoding must be one of"),
])
def test_bad_inputs_are_one_data_error(x, timesteps, encoding, message):
    with pytest.raises(DataError, match=message):
        scadeploy.compile(_net(), None, x, timesteps, encoding)


def test_a_non_module_is_a_model_error():
    with pytest.raises(ModelError, match="must be a torch.nn.Module"):
        scadeploy.compile(lambda x: x, None, X, 4)


def test_integer_spike_sequences_are_accepted():
    events = (torch.rand(4, 3, 1, 4, 4) > 0.5).to(torch.int64)
    result = scadeploy.compile(_net(), None, events, 4, "sequence")
    assert result.samples.dtype == torch.float32 and result.parity.exact


class _FlattenResidual(nn.Module):
    """f = flatten(sn1(bn1(conv1(x)))); out = fc(f + sn2(fc1(f))): an add of a flattened map and features."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.bn1, self.sn1 = layer.Conv2d(1, 4, 3, padding=1), layer.BatchNorm2d(4), neuron.IFNode()
        self.flat, self.fc1, self.sn2 = layer.Flatten(), layer.Linear(64, 64), neuron.IFNode()
        self.fc = layer.Linear(64, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.flat(self.sn1(self.bn1(self.conv1(x))))
        return self.fc(f + self.sn2(self.fc1(f)))


@pytest.mark.parametrize("masked", [False, True])
def test_a_residual_add_after_flatten_compiles_exactly(masked):
    torch.manual_seed(0)
    net = _FlattenResidual().eval()
    masks = None
    if masked:
        with torch.no_grad():
            for module in (net.conv1, net.bn1):
                module.weight[1] = 0
                module.bias[1] = 0
            net.fc1.weight[5] = 0
            net.fc1.bias[5] = 0
        masks = {"conv1": torch.tensor([1, 0, 1, 1]), "fc1": torch.arange(64) != 5, "fc": torch.ones(3)}
    result = scadeploy.compile(net, masks, torch.rand(3, 1, 4, 4), 4)
    assert result.parity.exact and result.fidelity.passed
    assert result.stripped["fc1"].shape == (64,)  # the features an add ties to a flattened map stay
