"""SynOps against a brute-force count of every input spike's fan-out; masked and stripped models agree."""

from __future__ import annotations

import itertools

import pytest
import torch
from support import INPUT_SHAPES, masked_model

from scadeploy.backends.torch_ref import run_graph
from scadeploy.compiler import compile_model
from scadeploy.frontends.trace import trace_model
from scadeploy.ir.graph import (
    Conv2dAttrs,
    FlattenAttrs,
    Graph,
    InputAttrs,
    LinearAttrs,
    NeuronAttrs,
    Node,
    Op,
    OutputAttrs,
)
from scadeploy.ir.passes.fold_batchnorm import fold_batchnorm
from scadeploy.ir.verify import verify
from scadeploy.measure.synops import E_AC_PJ, E_MAC_PJ, count_params, dense_macs, energy_estimate, measure_synops


def brute_force_conv(x: torch.Tensor, weight: torch.Tensor, stride: tuple, padding: tuple, groups: int) -> int:
    """For every non-zero input, count the outputs it reaches through a non-zero weight (explicit loops)."""
    c_in, h, w = x.shape
    c_out, c_group, kh, kw = weight.shape
    out_h = (h + 2 * padding[0] - kh) // stride[0] + 1
    out_w = (w + 2 * padding[1] - kw) // stride[1] + 1
    per_group = c_out // groups
    total = 0
    for c, i, j in itertools.product(range(c_in), range(h), range(w)):
        if x[c, i, j] == 0:
            continue
        g = c // c_group
        for o, y, z in itertools.product(range(g * per_group, (g + 1) * per_group), range(out_h), range(out_w)):
            ky, kx = i + padding[0] - y * stride[0], j + padding[1] - z * stride[1]
            if 0 <= ky < kh and 0 <= kx < kw and weight[o, c % c_group, ky, kx] != 0:
                total += 1
    return total


def brute_force_linear(x: torch.Tensor, weight: torch.Tensor) -> int:
    return sum(int(weight[o, i] != 0) for i in range(x.shape[0]) if x[i] != 0 for o in range(weight.shape[0]))


def tiny_graph(groups: int, timesteps: int = 2) -> Graph:
    """input -> neuron (binary spikes) -> strided, padded conv (some zero weights) -> flatten -> linear."""
    gen = torch.Generator().manual_seed(0)
    conv_w = torch.randn(4, 4 // groups, 3, 3, generator=gen) * (torch.rand(4, 4 // groups, 3, 3, generator=gen) > 0.3)
    lin_w = torch.randn(3, 4 * 3 * 3, generator=gen) * (torch.rand(3, 36, generator=gen) > 0.5)
    conv = Conv2dAttrs(4, 4, (3, 3), (2, 2), (1, 1), groups=groups)
    nodes = [
        Node("input", Op.INPUT, (), InputAttrs(), (4, 5, 5)),
        Node("sn", Op.NEURON, ("input",), NeuronAttrs(v_threshold=0.5), (4, 5, 5)),
        Node("conv", Op.CONV2D, ("sn",), conv, (4, 3, 3), {"weight": conv_w}),
        Node("sn2", Op.NEURON, ("conv",), NeuronAttrs(v_threshold=0.2), (4, 3, 3)),
        Node("flatten", Op.FLATTEN, ("sn2",), FlattenAttrs(), (36,)),
        Node("fc", Op.LINEAR, ("flatten",), LinearAttrs(36, 3), (3,), {"weight": lin_w}),
        Node("output", Op.OUTPUT, ("fc",), OutputAttrs(), (3,)),
    ]
    return verify(Graph(tuple(nodes), timesteps))


@pytest.mark.parametrize("groups", [1, 2])
def test_synops_equal_a_brute_force_count(groups) -> None:
    graph = tiny_graph(groups)
    x = torch.rand(3, 4, 5, 5, generator=torch.Generator().manual_seed(1))
    spikes = run_graph(graph, x, record=True).spikes
    conv_w, lin_w = graph["conv"].params["weight"], graph["fc"].params["weight"]
    conv_ops = sum(brute_force_conv(s, conv_w, (2, 2), (1, 1), groups) for step in spikes["sn"] for s in step)
    fc_ops = sum(brute_force_linear(s.flatten(), lin_w) for step in spikes["sn2"] for s in step)
    report = measure_synops(graph, x)
    rows = {r.name: r for r in report.layers}
    assert conv_ops > 0 and fc_ops > 0
    assert rows["conv"].effective_acs == pytest.approx(conv_ops / 3) and rows["conv"].effective_macs == 0
    assert rows["fc"].effective_acs == pytest.approx(fc_ops / 3)
    ones = torch.ones(4, 5, 5)
    assert rows["conv"].dense == brute_force_conv(ones, torch.ones_like(conv_w), (2, 2), (1, 1), groups) * 2
    assert rows["conv"].input_rate == pytest.approx(float(spikes["sn"].mean()))


def test_analog_input_counts_as_macs() -> None:
    model, _ = masked_model("digits", 1.0)
    graph = fold_batchnorm(trace_model(model, INPUT_SHAPES["digits"], 4))
    x = torch.rand(4, *INPUT_SHAPES["digits"], generator=torch.Generator().manual_seed(0)) + 0.1
    rows = {r.name: r for r in measure_synops(graph, x).layers}
    first = rows["features.conv1"]
    assert first.effective_acs == 0 and first.effective_macs > 0 and first.input_rate == 1.0
    assert first.effective_macs == pytest.approx(first.dense)  # no zero weights, no zero pixels
    assert rows["features.conv2"].effective_macs == 0 and rows["features.conv2"].effective_acs > 0


def test_masked_and_stripped_models_have_equal_effective_synops() -> None:
    model, masks = masked_model("vgg16", 0.3, widths=[16] * 13, hidden=32)
    x = torch.rand(4, *INPUT_SHAPES["vgg16"], generator=torch.Generator().manual_seed(0))
    result = compile_model(model, masks, x, timesteps=4)
    masked, stripped = fold_batchnorm(result.masked), result.deployable
    a, b = measure_synops(masked, x), measure_synops(stripped, x)
    assert b.effective_acs > 0 and b.effective_macs > 0
    assert a.effective_acs == pytest.approx(b.effective_acs, rel=1e-12)
    assert a.effective_macs == pytest.approx(b.effective_macs, rel=1e-12)
    assert b.dense < a.dense and dense_macs(stripped) < dense_macs(masked)
    assert count_params(stripped) < count_params(masked)


def test_dense_macs_and_energy() -> None:
    graph = tiny_graph(1, timesteps=3)
    assert dense_macs(graph) == 3 * (4 * 3 * 3 * 4 * 9 + 36 * 3)
    x = torch.rand(2, 4, 5, 5, generator=torch.Generator().manual_seed(1))
    report = measure_synops(graph, x)
    energy = energy_estimate(report)
    expected_pj = report.effective_acs * E_AC_PJ + report.effective_macs * E_MAC_PJ
    assert energy["total_uj"] == pytest.approx(expected_pj * 1e-6)
    assert "compute-only" in energy["label"]
    assert report.to_dict()["total"]["effective_acs"] == report.effective_acs


def test_binary_event_input_counts_accumulates_not_multiplies() -> None:
    from own_model.nets import EventNet

    from scadeploy.data import load_dataset
    from scadeploy.data.events import frames_to_events
    from scadeploy.ir.graph import Encoding

    torch.manual_seed(0)
    model = EventNet().eval()
    graph = trace_model(model, (2, 8, 8), 4, Encoding.SEQUENCE)
    events = frames_to_events(load_dataset("digits", train=False).tensors[0][:6], 4)
    report = measure_synops(graph, events)
    first = report.layers[0]
    assert report.samples == 6 and first.name == "conv1"
    assert first.effective_macs == 0 and first.effective_acs > 0
