"""Silence is certified in the runtimes' float32 arithmetic, with a margin, not only in float64."""

from __future__ import annotations

import pytest
import torch

from scadeploy.backends.torch_ref import run_graph
from scadeploy.ir.graph import (
    Conv2dAttrs,
    FlattenAttrs,
    Graph,
    InputAttrs,
    LinearAttrs,
    MeanOverTimeAttrs,
    NeuronAttrs,
    NeuronKind,
    Node,
    Op,
    OutputAttrs,
)
from scadeploy.ir.passes.strip_channels import strip_channels
from scadeploy.ir.verify import verify
from scadeploy.parity import compare_stripped

T = 3
THRESHOLD = 100.0
# NOTE: float32(33.33333206) * 3 is 99.9999962 in float64, but three float32 additions give 100.0.
TIE_BIAS = 33.33333206


def drive_graph(drive: float, channels: tuple[int, ...] = (0, 1)) -> Graph:
    """input(1x2x2) -> conv 1x1 (channel 0 reads the input, channel 1 is masked with constant bias `drive`)
    -> IF(threshold 100) -> flatten -> mean -> linear -> output; `channels` keeps a subset of the conv."""
    index = torch.tensor(channels)
    weight = torch.tensor([[[[60.0]]], [[[0.0]]]])[index]
    bias = torch.tensor([0.0, drive])[index]
    head = torch.arange(24, dtype=torch.float32).reshape(3, 2, 4)[:, index].reshape(3, -1) / 10
    c = len(channels)
    nodes = [
        Node("input", Op.INPUT, (), InputAttrs(), (1, 2, 2)),
        Node("conv", Op.CONV2D, ("input",), Conv2dAttrs(1, c, (1, 1), bias=True), (c, 2, 2),
             {"weight": weight, "bias": bias}),
        Node("sn", Op.NEURON, ("conv",), NeuronAttrs(NeuronKind.IF, THRESHOLD, 0.0), (c, 2, 2)),
        Node("flat", Op.FLATTEN, ("sn",), FlattenAttrs(), (4 * c,)),
        Node("mean", Op.MEAN_OVER_TIME, ("flat",), MeanOverTimeAttrs(), (4 * c,)),
        Node("head", Op.LINEAR, ("mean",), LinearAttrs(4 * c, 3, bias=True), (3,),
             {"weight": head, "bias": torch.zeros(3)}),
        Node("output", Op.OUTPUT, ("head",), OutputAttrs(), (3,)),
    ]
    return verify(Graph(tuple(nodes), T))


MASK = {"conv": torch.tensor([True, False])}


def test_float32_tie_is_kept_although_float64_stays_below_the_threshold():
    graph = drive_graph(TIE_BIAS)
    x = torch.rand(4, 1, 2, 2)
    assert run_graph(graph, x, record=True, dtype=torch.float64).spikes["sn"][:, :, 1].sum() == 0
    assert run_graph(graph, x, record=True).spikes["sn"][:, :, 1].sum() == 4 * 4  # fires at t=3 in float32
    stripped, report = strip_channels(graph, MASK)
    assert [(k.layer, k.channel) for k in report.kept] == [("conv", 1)]
    assert "float32 rounding" in report.kept[0].reason
    assert stripped["conv"].shape[0] == 2
    assert compare_stripped(graph, stripped, report.kept_index, x).exact


@pytest.mark.parametrize(("drive", "removed"), [
    (33.3333, True),  # 3 * drive = 99.9999 (1e-4 below): far outside the float32 margin, certified silent
    (33.33333, False),  # 99.99999 (1e-5 below): inside the margin (~1.2e-5), kept although silent in both
    (TIE_BIAS, False),  # 99.9999962: fires in float32
    (33.333336, False),  # above the threshold in both arithmetics: fires
])
def test_margin_just_below_and_above_the_threshold(drive: float, removed: bool):
    graph = drive_graph(drive)
    stripped, report = strip_channels(graph, MASK)
    assert (stripped["conv"].shape[0] == 1) is removed
    assert compare_stripped(graph, stripped, report.kept_index, torch.rand(4, 1, 2, 2)).exact


def test_parity_is_not_exact_when_float32_runs_differ():
    """A stripped graph that drops the float32-firing channel agrees in float64 but not in float32."""
    masked, stripped = drive_graph(TIE_BIAS), drive_graph(TIE_BIAS, channels=(0,))
    parity = compare_stripped(masked, stripped, {"conv": torch.tensor([0]), "sn": torch.tensor([0])},
                              torch.rand(4, 1, 2, 2))
    assert parity.float64.spike_mismatches == 0 and parity.float64.max_logit_diff < 1e-9  # float64 sees no difference
    assert parity.removed_channel_spikes == 4 * 4 and parity.float32.max_logit_diff > 0.1
    assert not parity.exact and not parity.to_dict()["exact"]
