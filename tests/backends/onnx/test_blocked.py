"""Neurons in ONNX Runtime's blocked layout: the reorders go, the numbers stay bit for bit."""

from __future__ import annotations

from collections import Counter

import numpy as np
import onnx
import pytest
import torch
from support import INPUT_SHAPES, masked_model
from tolerances import ONNX_LOGIT_ATOL

from scadeploy.backends.onnx.blocked import NCHWC, blocked_model, blocked_session, keep_blocked, optimized_model
from scadeploy.backends.onnx.export import OnnxOptions, build_models
from scadeploy.backends.onnx.runtime import ort_session
from scadeploy.backends.torch_ref import run_graph
from scadeploy.frontends.trace import trace_model
from scadeploy.ir.passes.fold_batchnorm import fold_batchnorm


def _ops(model: onnx.ModelProto) -> Counter:
    return Counter(n.op_type for n in model.graph.node if n.domain == NCHWC)


@pytest.fixture(scope="module", params=["digits", "vgg_mnist"])
def lowered(request):
    model, _ = masked_model(request.param, 0.5)
    graph = fold_batchnorm(trace_model(model, INPUT_SHAPES[request.param], timesteps=4))
    sequence, _ = build_models(graph, OnnxOptions(align_channels=8))
    x = torch.rand(5, *INPUT_SHAPES[request.param], generator=torch.Generator().manual_seed(3))
    return graph, sequence.SerializeToString(), x


def test_blocked_model_is_bit_exact_with_fewer_reorders(lowered) -> None:
    graph, sequence, x = lowered
    optimized = optimized_model(sequence)
    rewritten, regions = keep_blocked(optimized)
    before, after = _ops(optimized), _ops(rewritten)
    assert regions >= 1 and after["ReorderOutput"] == before["ReorderOutput"] - regions
    assert after["ReorderInput"] < before["ReorderInput"] and after["Conv"] == before["Conv"]
    baseline = ort_session(sequence, threads=1).run(None, {graph.input.name: x.numpy()})[0]
    got = blocked_session(sequence, threads=1).run(None, {graph.input.name: x.numpy()})[0]
    np.testing.assert_array_equal(got, baseline)
    np.testing.assert_allclose(got, run_graph(graph, x).logits.numpy(), atol=ONNX_LOGIT_ATOL)


def test_a_region_that_reaches_the_classifier_keeps_its_reorder(lowered) -> None:
    _, sequence, _ = lowered
    rewritten = onnx.load_from_string(blocked_model(sequence)[0])
    kept = [n for n in rewritten.graph.node if n.op_type == "ReorderOutput"]
    assert kept  # the last conv's spikes are flattened for the linear layer: that one must go back to NCHW
    consumers = {i for n in rewritten.graph.node for i in n.input}
    assert all(n.output[0] in consumers for n in kept)


def test_a_region_with_an_input_from_outside_is_left_alone(lowered) -> None:
    _, sequence, _ = lowered
    optimized = optimized_model(sequence)
    normal, regions_before = keep_blocked(optimized)
    left = {o for n in normal.graph.node for o in n.output}
    reorder = next(n for n in optimized.graph.node if n.op_type == "ReorderOutput" and n.output[0] not in left)
    nodes = list(optimized.graph.node)
    reader = next(n for n in nodes[nodes.index(reorder):] if n.op_type == "Less")  # the region's first compare
    reader.input[1] = optimized.graph.input[0].name  # a full-size NCHW tensor meets the region
    rewritten, regions = keep_blocked(optimized)
    assert reorder.output[0] in {o for n in rewritten.graph.node for o in n.output}
    assert regions == regions_before - 1
