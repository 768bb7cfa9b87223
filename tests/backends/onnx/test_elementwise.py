"""ONNX lowering of mul (Mul), complement (Sub from 1) and scale (Mul by a constant), in both layouts, and the
SEW ResNets compiled for onnx-cpu: every spike as the torch reference computes it."""

from __future__ import annotations

import onnx
import pytest
import torch
from graphs import GraphBuilder
from sew_support import CONNECTIONS, frames, narrow_sew_resnet
from tolerances import ONNX_LOGIT_ATOL

from scadeploy.backends.onnx import export as onnx_backend
from scadeploy.backends.onnx.sequence import build_sequence_model
from scadeploy.backends.torch_ref import run_graph
from scadeploy.compiler import compile_model
from scadeploy.ir.graph import (
    AddAttrs,
    ComplementAttrs,
    Conv2dAttrs,
    FlattenAttrs,
    LinearAttrs,
    MulAttrs,
    NeuronAttrs,
    Op,
    ScaleAttrs,
)
from scadeploy.targets import load_target


def _elementwise_graph():
    """Spikes a, b; the frame gated by a (a static frame times a sequence), a * (1 - b), scaled by 2.74 and
    added to the gated frame (so the scale cannot fold), then conv -> IF -> flatten -> per-step linear."""
    g = torch.Generator().manual_seed(0)
    b = GraphBuilder((2, 4, 4))
    for name in ("a", "b"):
        b.add(f"{name}.w", Op.CONV2D, Conv2dAttrs(2, 2, (1, 1)), {"weight": torch.randn(2, 2, 1, 1, generator=g)},
              inputs=("input",))
        b.add(name, Op.NEURON, NeuronAttrs(v_threshold=0.4))
    b.add("gated", Op.MUL, MulAttrs(), inputs=("input", "a"))
    b.add("not_b", Op.COMPLEMENT, ComplementAttrs(), inputs=("b",))
    b.add("iand", Op.MUL, MulAttrs(), inputs=("a", "not_b"))
    b.add("scaled", Op.SCALE, ScaleAttrs(2.74), inputs=("iand",))
    b.add("sum", Op.ADD, AddAttrs(), inputs=("scaled", "gated"))
    b.add("conv", Op.CONV2D, Conv2dAttrs(2, 3, (3, 3), padding=(1, 1)),
          {"weight": torch.randn(3, 2, 3, 3, generator=g) * 0.5})
    b.add("sn", Op.NEURON, NeuronAttrs(v_threshold=0.5))
    b.add("flat", Op.FLATTEN, FlattenAttrs())
    b.add("fc", Op.LINEAR, LinearAttrs(48, 4, bias=True), {"weight": torch.randn(4, 48, generator=g),
                                                            "bias": torch.zeros(4)})
    return b.graph(timesteps=3)


def test_element_wise_ops_lower_to_mul_and_sub(tmp_path) -> None:
    graph = _elementwise_graph()
    x = torch.rand(16, 2, 4, 4, generator=torch.Generator().manual_seed(1)) * 2
    spikes = run_graph(graph, x, record=True).spikes
    assert all(0 < float(s.mean()) < 1 for s in spikes.values())
    section = onnx_backend.export(graph, load_target("onnx-cpu"), tmp_path, x)
    parity = section["parity"]
    assert parity["spike_mismatches"] == 0 and parity["spikes_compared"] > 0
    assert parity["max_logit_diff"] <= ONNX_LOGIT_ATOL and parity["step_vs_sequence_max_diff"] <= 1e-5
    model = onnx.load(tmp_path / "model.onnx")
    by_name = {n.name: n for n in model.graph.node}
    assert by_name["gated"].op_type == "Mul" and by_name["iand"].op_type == "Mul"
    assert by_name["not_b"].op_type == "Sub" and by_name["not_b"].input[0] == "not_b.one"
    assert by_name["scaled"].op_type == "Mul" and by_name["scaled"].input[1] == "scaled.factor"
    assert by_name["gated.input.repeat"].op_type == "Concat"  # the static frame meets the folded spikes
    step = onnx.load(tmp_path / "model.step.onnx")
    assert {"Mul", "Sub"} <= {n.op_type for n in step.graph.node}


def test_the_probe_reproduces_the_reference_spikes_bit_for_bit() -> None:
    """The exposed spikes of every neuron, including the one reading the element-wise values."""
    graph = _elementwise_graph()
    probe = build_sequence_model(graph, 17, expose_spikes=True)
    assert [o.name for o in probe.graph.output][1:] == ["a", "b", "sn"]


@pytest.mark.parametrize("cnf", CONNECTIONS)
def test_sew_resnet_compiles_for_onnx_with_exact_spikes(tmp_path, cnf: str) -> None:
    x = frames((3, 16, 16), 8)
    graph = compile_model(narrow_sew_resnet(cnf), None, x, timesteps=4).deployable
    parity = onnx_backend.export(graph, load_target("onnx-cpu"), tmp_path, x)["parity"]
    assert parity["spike_mismatches"] == 0 and parity["spikes_compared"] > 0 and parity["passed"]
    assert parity["max_logit_diff"] <= ONNX_LOGIT_ATOL and parity["step_vs_sequence_max_diff"] <= 1e-5
