"""strip_channels: exact on the reference models, conservative on channels it cannot certify."""

from __future__ import annotations

import pytest
import torch
from support import INPUT_SHAPES, masked_model
from tolerances import STRIP_LOGIT_ATOL

from scadeploy.backends.torch_ref import run_graph
from scadeploy.frontends.trace import trace_model
from scadeploy.ir.passes.strip_channels import strip_channels
from scadeploy.models import MODEL_WIDTH_ARG, build_model
from scadeploy.parity import compare_stripped

CASES = [(name, keep, neuron) for name in ("digits", "vgg16", "resnet18") for keep in (0.9, 0.5, 0.2)
         for neuron in ("if", "lif")]


def _kept_widths_model_params(name: str, masks: dict, units: list) -> int:
    """Parameters of the same architecture built directly with the kept widths (independent of the IR)."""
    widths = [int(masks[u.conv].sum()) for u in units]
    return sum(p.numel() for p in build_model(name, **{MODEL_WIDTH_ARG[name]: widths}).parameters())


@pytest.mark.parametrize(("name", "keep", "neuron"), CASES)
def test_stripped_reproduces_masked(name: str, keep: float, neuron: str) -> None:
    model, masks = masked_model(name, keep, neuron, seed=int(keep * 10))
    graph = trace_model(model, INPUT_SHAPES[name], timesteps=4)
    stripped, report = strip_channels(graph, masks)
    x = torch.rand(2, *INPUT_SHAPES[name], generator=torch.Generator().manual_seed(1)) * 1.5

    parity = compare_stripped(graph, stripped, report.kept_index, x)
    assert parity.float64.spike_mismatches == 0 and parity.removed_channel_spikes == 0
    assert parity.float64.spikes_compared > 0
    ref, out = run_graph(graph, x), run_graph(stripped, x)
    assert torch.allclose(ref.logits, out.logits, atol=STRIP_LOGIT_ATOL, rtol=0)
    assert report.kept == []
    assert stripped.num_params() == _kept_widths_model_params(name, masks, model.prunable_units())
    assert stripped.num_params() < graph.num_params()


def test_masked_channel_that_fires_is_kept_and_reported() -> None:
    model, masks = masked_model("digits", 0.5, seed=3)
    unit = model.prunable_units()[1]
    pruned = int((~masks[unit.conv]).nonzero()[0])
    bn = dict(model.named_modules())[unit.bn]
    with torch.no_grad():
        bn.bias[pruned] = 0.6  # conv filter is zero, but BN outputs 0.6 per step: an IF neuron fires at t=1
    graph = trace_model(model, INPUT_SHAPES["digits"], timesteps=4)
    stripped, report = strip_channels(graph, masks)

    assert [(k.layer, k.channel) for k in report.kept] == [(unit.conv, pruned)]
    assert report.kept[0].reason.startswith("not silent")
    assert stripped[unit.conv].shape[0] == int(masks[unit.conv].sum()) + 1
    x = torch.rand(3, *INPUT_SHAPES["digits"])
    assert compare_stripped(graph, stripped, report.kept_index, x).exact


def test_subthreshold_constant_is_certified_silent() -> None:
    model, masks = masked_model("digits", 0.5, seed=4)
    unit = model.prunable_units()[0]
    pruned = int((~masks[unit.conv]).nonzero()[0])
    with torch.no_grad():
        dict(model.named_modules())[unit.bn].bias[pruned] = 0.2  # IF reaches 0.8 < 1 within T = 4
    graph = trace_model(model, INPUT_SHAPES["digits"], timesteps=4)
    stripped, report = strip_channels(graph, masks)
    assert report.kept == []
    assert stripped[unit.conv].shape[0] == int(masks[unit.conv].sum())
    # With T = 5 the same channel reaches 1.0 and fires: it must stay.
    _, report5 = strip_channels(trace_model(model, INPUT_SHAPES["digits"], timesteps=5), masks)
    assert [(k.layer, k.channel) for k in report5.kept] == [(unit.conv, pruned)]


def test_unzeroed_filter_is_not_removed() -> None:
    model, masks = masked_model("digits", 0.5, seed=5)
    unit = model.prunable_units()[2]
    pruned = int((~masks[unit.conv]).nonzero()[0])
    with torch.no_grad():
        dict(model.named_modules())[unit.conv].weight[pruned] = 0.1
    _, report = strip_channels(trace_model(model, INPUT_SHAPES["digits"], 4), masks)
    assert len(report.kept) == 1 and "depends on the input" in report.kept[0].reason


def test_residual_group_masked_in_some_producers_is_kept() -> None:
    small = dict(input_size=8, stage_widths=(8, 8, 8, 8))
    model, masks = masked_model("resnet18", 1.0, seed=6, **small)
    modules = dict(model.named_modules())
    # Mask channel 0 of conv2 in the first block only: the residual sum also receives the stem's
    # channel 0 through the identity shortcut, so the channel must stay.
    masks = {"layer1.0.conv2": torch.tensor([False] + [True] * 7)}
    with torch.no_grad():
        modules["layer1.0.conv2"].weight[0] = 0.0
        modules["layer1.0.bn2"].weight[0] = 0.0
        modules["layer1.0.bn2"].bias[0] = 0.0
    graph = trace_model(model, (3, 8, 8), 4)
    stripped, report = strip_channels(graph, masks)
    assert [(k.layer, k.channel) for k in report.kept] == [("layer1.0.conv2", 0)]
    assert "residual group" in report.kept[0].reason and "conv1" in report.kept[0].reason
    assert stripped.num_params() == graph.num_params()
