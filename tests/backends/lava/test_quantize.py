"""quantize: per-layer integer scales within Loihi's ranges, exact IF thresholds, LIF decays, clear refusals."""

from __future__ import annotations

import math

import pytest
import torch
from support import INPUT_SHAPES, masked_model

from scadeploy.backends.lava.quantize import quantize
from scadeploy.backends.lava.rewrites import rewrite_for_lava
from scadeploy.backends.torch_ref import run_graph
from scadeploy.errors import UnsupportedError
from scadeploy.frontends.trace import trace_model
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
from scadeploy.ir.passes.fold_batchnorm import fold_batchnorm
from scadeploy.ir.verify import verify
from scadeploy.targets.backend_options import LavaOptions

T = 4


def tiny_graph(neuron: NeuronAttrs, seed: int = 0, conv_weight: torch.Tensor | None = None) -> Graph:
    """input(1x4x4) -> conv 2x3x3 (+bias) -> neuron -> flatten -> mean -> linear(32 -> 3) -> output."""
    g = torch.Generator().manual_seed(seed)
    weight = conv_weight if conv_weight is not None else torch.randn(2, 1, 3, 3, generator=g)
    nodes = [
        Node("input", Op.INPUT, (), InputAttrs(), (1, 4, 4)),
        Node("conv", Op.CONV2D, ("input",), Conv2dAttrs(1, 2, (3, 3), padding=(1, 1), bias=True), (2, 4, 4),
             {"weight": weight, "bias": torch.tensor([0.3, -0.2])}),
        Node("sn", Op.NEURON, ("conv",), neuron, (2, 4, 4)),
        Node("flat", Op.FLATTEN, ("sn",), FlattenAttrs(), (32,)),
        Node("mean", Op.MEAN_OVER_TIME, ("flat",), MeanOverTimeAttrs(), (32,)),
        Node("head", Op.LINEAR, ("mean",), LinearAttrs(32, 3, bias=True), (3,),
             {"weight": torch.randn(3, 32, generator=g), "bias": torch.randn(3, generator=g)}),
        Node("output", Op.OUTPUT, ("head",), OutputAttrs(), (3,)),
    ]
    return verify(Graph(tuple(nodes), T))


def test_if_layer_fits_loihi_ranges_and_keeps_the_threshold_rule():
    qgraph, report = quantize(tiny_graph(NeuronAttrs(NeuronKind.IF, 1.0, 0.0)))
    q = report.layers["sn"]
    w = qgraph["conv"].params["weight"]
    assert torch.equal(w, w.round()) and w.abs().max() <= 254
    assert q.exact and q.i_decay == 4096 and q.v_decay == 0
    assert q.vth_mant == q.threshold - 1  # v > (T-1) << 6  <=>  V >= T on multiples of 64
    assert q.threshold == round(1.0 * q.scale)  # the scale makes theta * S an integer
    assert report.input_scale == 128.0  # |x| <= 1 as 8-bit graded messages: x_int = x * 2^7
    assert qgraph["sn"].attrs == NeuronAttrs(NeuronKind.IF, float(q.threshold), 0.0)


def test_integer_graph_matches_float_graph_when_weights_are_on_the_grid():
    """Weights and bias on a 1/64 grid and inputs on a 1/16 grid: the integer graph spikes identically."""
    g = torch.Generator().manual_seed(3)
    weight = torch.randint(-64, 65, (2, 1, 3, 3), generator=g).float() / 64
    graph = tiny_graph(NeuronAttrs(NeuronKind.IF, 1.0, 0.0), conv_weight=weight)
    graph = graph.with_nodes([n.with_(params=n.params | {"bias": torch.tensor([0.25, -0.125])})
                              if n.name == "conv" else n for n in graph.nodes])
    # Wide enough that the 17-bit threshold binds: S = 2^17, so every 1/64-grid weight and bias is an integer.
    qgraph, report = quantize(graph, LavaOptions(weight_bits=16, bias_bits=17, state_bits=30))
    assert report.layers["sn"].scale == 2**17
    x = torch.randint(0, 17, (64, 1, 4, 4), generator=g).double() / 16
    ref = run_graph(graph, x, record=True, dtype=torch.float64)
    out = run_graph(qgraph, x * report.input_scale, record=True, dtype=torch.float64)
    assert torch.equal(ref.spikes["sn"], out.spikes["sn"])
    assert ref.spikes["sn"].mean() > 0.05  # the comparison is not vacuous


def test_v_reset_shifts_the_threshold():
    _, shifted = quantize(tiny_graph(NeuronAttrs(NeuronKind.IF, 1.0, -0.5)))
    _, plain = quantize(tiny_graph(NeuronAttrs(NeuronKind.IF, 1.5, 0.0)))
    assert shifted.layers["sn"] == plain.layers["sn"]


def test_lif_folds_tau_and_sets_the_voltage_decay():
    graph = tiny_graph(NeuronAttrs(NeuronKind.LIF, 1.0, 0.0, tau=3.0, decay_input=True))
    qgraph, report = quantize(graph)
    q = report.layers["sn"]
    assert q.v_decay == round(4096 / 3) and q.vth_mant == q.threshold and not q.exact
    expected = graph["conv"].params["weight"] / 3.0 * q.scale / report.input_scale
    assert torch.allclose(qgraph["conv"].params["weight"], expected.round())
    assert qgraph["sn"].attrs.decay_input is False and math.isclose(qgraph["sn"].attrs.tau, 4096 / q.v_decay)


def test_scale_respects_bias_and_state_limits():
    options = LavaOptions(bias_bits=6)  # |bias_int| <= 31
    qgraph, report = quantize(tiny_graph(NeuronAttrs(NeuronKind.IF, 1.0, 0.0)), options)
    assert qgraph["conv"].params["bias"].abs().max() <= 31
    w = qgraph["conv"].params["weight"]
    rows = w.abs().reshape(2, -1).sum(1).max() * options.input_max  # worst one-step input
    assert rows + report.layers["sn"].threshold <= options.activation_max


def test_readout_integrator_cannot_overflow_over_t_steps():
    qgraph, report = quantize(tiny_graph(NeuronAttrs(NeuronKind.IF, 1.0, 0.0)))
    w = qgraph["head"].params["weight"]
    assert T * w.abs().sum(1).max() <= 2**17 - 1
    assert report.readout == "head" and report.layers["head"].i_decay == 0


def test_or_layers_stay_at_scale_one():
    model, _ = masked_model("digits", 1.0)
    _, report = quantize(rewrite_for_lava(fold_batchnorm(trace_model(model, INPUT_SHAPES["digits"], T))))
    pool = report.layers["features.pool1"]
    assert (pool.scale, pool.threshold, pool.vth_mant) == (1.0, 1, 0)


def test_soft_reset_is_refused_with_a_reason():
    with pytest.raises(UnsupportedError, match="soft reset.*retrain with a hard reset"):
        quantize(tiny_graph(NeuronAttrs(NeuronKind.IF, 1.0, None)))


def test_a_linear_before_the_time_mean_is_refused():
    graph = tiny_graph(NeuronAttrs(NeuronKind.IF, 1.0, 0.0))
    order = ["input", "conv", "sn", "flat", "head", "mean", "output"]
    rewired = {"head": ("flat",), "mean": ("head",), "output": ("mean",)}
    nodes = [graph[name].with_(inputs=rewired.get(name, graph[name].inputs)) for name in order]
    nodes[5] = nodes[5].with_(shape=(3,))
    with pytest.raises(UnsupportedError, match="'head' feeds \\['mean_over_time'\\]: weights must drive neurons"):
        quantize(verify(Graph(tuple(nodes), T)))
