"""Adaptive average pooling without a fixed window: traced as its own op, stripped exactly, folded into the linear
layer after it for every backend, and refused by name where it cannot be folded."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from graphs import GraphBuilder
from spikingjelly.activation_based import functional, layer, neuron
from tolerances import EXACT_F64_ATOL
from torch import nn

from scadeploy.backends.onnx.ops import ONNX_OPS
from scadeploy.backends.spikingjelly import to_spikingjelly
from scadeploy.backends.torch_ref import run_graph
from scadeploy.compiler import compile_model
from scadeploy.frontends.trace import trace_model
from scadeploy.ir.graph import AdaptivePoolAttrs, Conv2dAttrs, NeuronAttrs, Op
from scadeploy.ir.passes.deploy import deployable
from scadeploy.ir.passes.fold_adaptive_pool import fold_adaptive_pool, pooling_matrix


@pytest.mark.parametrize(("size", "out"), [((1, 1), (7, 7)), ((2, 2), (7, 7)), ((3, 5), (2, 3)), ((5, 5), (3, 3))])
def test_pooling_matrix_is_the_pool(size: tuple[int, int], out: tuple[int, int]) -> None:
    x = torch.rand(6, *size, dtype=torch.float64)
    pooled = F.adaptive_avg_pool2d(x, out).reshape(6, -1)
    assert torch.allclose(x.reshape(6, -1) @ pooling_matrix(size, out).T, pooled, atol=1e-15)


def _vgg_head() -> nn.Module:
    """Conv -> BN -> IF -> AdaptiveAvgPool2d((7, 7)) -> flatten -> linear -> IF -> linear, as spiking_vgg's head."""
    torch.manual_seed(0)
    model = nn.Sequential(
        layer.Conv2d(3, 4, 1), layer.BatchNorm2d(4), neuron.IFNode(), layer.AdaptiveAvgPool2d((7, 7)),
        layer.Flatten(), layer.Linear(4 * 49, 6), neuron.IFNode(), layer.Linear(6, 3)).eval()
    model[1].running_var.uniform_(0.5, 1.5)
    functional.set_step_mode(model, "m")
    return model


@pytest.mark.parametrize("side", [1, 2])
def test_an_adaptive_pool_folds_into_the_linear_after_it(side: int) -> None:
    """1x1 -> 7x7 replicates, 2x2 -> 7x7 overlaps: both are a fixed map the linear layer absorbs."""
    graph = trace_model(_vgg_head(), (3, side, side), 4)
    assert graph["3"].op is Op.ADAPTIVE_AVGPOOL
    folded = fold_adaptive_pool(graph)
    assert folded.of_op(Op.ADAPTIVE_AVGPOOL) == [] and folded["5"].attrs.in_features == 4 * side * side
    x = torch.rand(3, 3, side, side) * 3
    a, b = (run_graph(g, x, record=True, dtype=torch.float64) for g in (graph, folded))
    assert all(torch.equal(a.spikes[k], b.spikes[k]) for k in a.spikes)
    assert torch.allclose(a.logits, b.logits, atol=EXACT_F64_ATOL)


def test_masked_channels_are_stripped_through_an_adaptive_pool() -> None:
    model = _vgg_head()
    with torch.no_grad():
        for module in (model[0], model[1]):
            module.weight[1:3] = 0
            module.bias[1:3] = 0
    result = compile_model(model, None, torch.rand(4, 3, 1, 1), 4)
    assert result.fidelity.passed and result.parity.exact
    assert result.stripped["0"].shape[0] == 2 and result.stripped["3"].shape == (2, 7, 7)
    assert result.deployable["5"].attrs.in_features == 2
    assert result.deployable.of_op(Op.ADAPTIVE_AVGPOOL, Op.BATCHNORM) == []


def test_an_adaptive_pool_that_cannot_fold_is_refused_by_name() -> None:
    b = GraphBuilder((2, 2, 2))
    b.add("sn", Op.NEURON, NeuronAttrs())
    b.add("pool", Op.ADAPTIVE_AVGPOOL, AdaptivePoolAttrs((3, 3)))
    b.add("conv", Op.CONV2D, Conv2dAttrs(2, 2, (1, 1)), {"weight": torch.ones(2, 2, 1, 1)})
    graph = b.graph()
    assert deployable(graph)["pool"].op is Op.ADAPTIVE_AVGPOOL
    assert ONNX_OPS.refusals(graph) == ["'pool' (adaptive_avgpool): it has no fixed window; compile folds it into "
                                        "the flatten -> linear that reads it, and this one feeds something else"]
    x = torch.rand(3, 2, 2, 2) * 2
    with torch.no_grad():
        rebuilt = to_spikingjelly(graph)(x.unsqueeze(0).expand(4, -1, -1, -1, -1))
    assert torch.allclose(rebuilt, run_graph(graph, x).logits, atol=1e-6)


@pytest.mark.parametrize(("side", "kernel"), [(14, 2), (7, 1)])
def test_a_fixed_window_stays_average_pooling(side: int, kernel: int) -> None:
    """At 224 px VGG's features are 7x7 (or 14x14 before the last pool): a plain window."""
    model = nn.Sequential(layer.Conv2d(3, 2, 1), neuron.IFNode(), layer.AdaptiveAvgPool2d((7, 7))).eval()
    graph = trace_model(model, (3, side, side), 2)
    assert graph["2"].op is Op.AVGPOOL and graph["2"].attrs.kernel_size == (kernel, kernel)
