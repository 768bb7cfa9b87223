"""The 24-bit bounds hold on the rounded integers and over T steps, and 'exact' is only claimed when measured."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from scadeploy.backends.lava import export as lava
from scadeploy.backends.lava.emulator import emulate
from scadeploy.backends.lava.net import lower
from scadeploy.backends.lava.netx import write_net
from scadeploy.backends.lava.quantize import quantize
from scadeploy.backends.lava.runner import run_lava
from scadeploy.backends.torch_ref import run_graph
from scadeploy.cli.compile_cmd import target_summary
from scadeploy.errors import TargetError
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
from scadeploy.ir.verify import verify
from scadeploy.targets import load_target
from scadeploy.targets.backend_options import LavaOptions

ACTIVATION_MAX = LavaOptions().activation_max  # 2^17 - 1 weight units: (2^23 - 1) >> 6


def wide_graph(n: int, hidden_weight: float | None, head_weight: float = 1.0, bias: float = 0.0,
               timesteps: int = 4) -> Graph:
    """input(1x(n/100)x100) -> conv 1x1 -> IF (fires every step on x = 1) -> flatten -> [linear(n -> 2, all weights
    `hidden_weight`, bias) -> IF(1)] -> mean -> linear readout (all weights `head_weight`) -> output."""
    rows = n // 100
    nodes = [
        Node("input", Op.INPUT, (), InputAttrs(), (1, rows, 100)),
        Node("conv", Op.CONV2D, ("input",), Conv2dAttrs(1, 1, (1, 1)), (1, rows, 100),
             {"weight": torch.full((1, 1, 1, 1), 2.0)}),
        Node("sn0", Op.NEURON, ("conv",), NeuronAttrs(NeuronKind.IF, 1.0, 0.0), (1, rows, 100)),
        Node("flat", Op.FLATTEN, ("sn0",), FlattenAttrs(), (n,)),
    ]
    last, features = "flat", n
    if hidden_weight is not None:
        nodes += [Node("fc", Op.LINEAR, ("flat",), LinearAttrs(n, 2, bias=True), (2,),
                       {"weight": torch.full((2, n), hidden_weight), "bias": torch.full((2,), bias)}),
                  Node("sn", Op.NEURON, ("fc",), NeuronAttrs(NeuronKind.IF, 1.0, 0.0), (2,))]
        last, features = "sn", 2
    nodes += [
        Node("mean", Op.MEAN_OVER_TIME, (last,), MeanOverTimeAttrs(), (features,)),
        Node("head", Op.LINEAR, ("mean",), LinearAttrs(features, 2), (2,),
             {"weight": torch.full((2, features), head_weight)}),
        Node("output", Op.OUTPUT, ("head",), OutputAttrs(), (2,)),
    ]
    return verify(Graph(tuple(nodes), timesteps))


def ones(graph: Graph) -> torch.Tensor:
    """One all-ones frame: every input neuron fires at every step."""
    return torch.ones(1, *graph.input.shape)


def _emulator_vs_integer_graph(graph: Graph, options: LavaOptions | None = None):
    qgraph, report = quantize(graph, options)
    net = lower(qgraph, report)
    emu = emulate(net, ones(graph))
    q = run_graph(qgraph, emu.x_int.double(), record=True, dtype=torch.float64)
    return net, qgraph, report, emu, q


@pytest.mark.parametrize(("weight", "scale"), [(0.999, 32.0), (1.016, 31.0)])
def test_current_bound_uses_the_rounded_integer_weights(weight: float, scale: float):
    """4000 inputs: sum|w| * S = 4064 * 32 fits the 17-bit input, but round(1.016 * 32) = 33 and
    4000 * 33 = 132000 does not: u would wrap and the layer never fire. S must drop to 31.
    With 0.999, round(0.999 * 32) = 32 and 4000 * 32 + 32 = 128032 fits: S stays 32."""
    net, qgraph, report, emu, q = _emulator_vs_integer_graph(wide_graph(4000, weight))
    assert report.layers["sn"].scale == scale
    w = qgraph["fc"].params["weight"]
    assert w.abs().sum(1).max() + report.layers["sn"].threshold <= ACTIVATION_MAX
    assert torch.equal(emu.spikes["sn"].double(), q.spikes["sn"])
    assert emu.spikes["sn"].all()  # fires every step, as the integer graph does
    assert ("scale lowered" in report.layers["sn"].note) is (weight > 1)


@pytest.mark.lava
@pytest.mark.slow
def test_lava_fires_like_the_integer_graph_on_the_wide_layer(tmp_path):
    graph = wide_graph(4000, 1.016)
    net, _, _, emu, _ = _emulator_vs_integer_graph(graph)
    result = run_lava(net, ones(graph), net_path=write_net(net, tmp_path / "model.net"), builder="netx")
    assert torch.equal(result.spikes["sn"], emu.spikes["sn"]) and result.spikes["sn"].all()
    assert torch.equal(result.logits, emu.logits)


@pytest.mark.parametrize("timesteps", [1, 8])
def test_if_potential_is_bounded_over_t_steps(timesteps: int):
    """A layer whose 4000 inputs all inhibit: an IF neuron sums -4000 * |w_int| every step, and Lava
    clips v at -(2^23 - 1). T * (negative input + negative bias) must stay inside 17 bits of weight units."""
    _, qgraph, report, emu, q = _emulator_vs_integer_graph(wide_graph(4000, -0.5, bias=-1.0, timesteps=timesteps))
    w, b = qgraph["fc"].params["weight"], qgraph["fc"].params["bias"]
    assert timesteps * (w.clamp(max=0).abs().sum(1) + b.clamp(max=0).abs()).max() <= ACTIVATION_MAX
    assert torch.equal(emu.spikes["sn"].double(), q.spikes["sn"])
    one_step = quantize(wide_graph(4000, -0.5, bias=-1.0, timesteps=1))[1].layers["sn"].scale
    assert (report.layers["sn"].scale < one_step / 4) is (timesteps == 8)  # lowered ~T times for T = 8


@pytest.mark.parametrize(("n", "fits_unrounded"), [(4000, True), (3700, False)])
def test_readout_integrator_bound_uses_the_rounded_weights(n: int, fits_unrounded: bool):
    """T * sum|w| * S = 2^17 - 1 by construction; with n = 3700 the weights round up (8.86 -> 9)."""
    net, qgraph, report, emu, q = _emulator_vs_integer_graph(wide_graph(n, None, head_weight=1.0))
    w = qgraph["head"].params["weight"]
    assert 4 * w.abs().sum(1).max() <= ACTIVATION_MAX
    assert torch.allclose(emu.logits, q.logits / report.layers["head"].scale, rtol=0, atol=1e-9)
    assert (round(ACTIVATION_MAX / (4 * n)) * 4 * n <= ACTIVATION_MAX) is fits_unrounded


def test_a_fixed_point_mismatch_fails_the_compile(tmp_path):
    """A target that promises a 25-bit state lets the integer graph reach 64 * 260000 > 2^23, where Lava's
    24-bit u wraps negative and never fires: the compile must fail, not report the network."""
    target = load_target("loihi2-sim")
    wide = dataclasses.replace(target, options=dataclasses.replace(target.options, state_bits=25))  # past the parser
    graph = wide_graph(4000, 1.016)
    with pytest.raises(TargetError, match=r"fixed point is not exact: .* differs from the integer graph in \d+ of"):
        lava.export(graph, wide, tmp_path, ones(graph))
    assert not (tmp_path / "model.net").exists()


def test_exact_is_recorded_and_printed_only_when_measured(tmp_path):
    graph = wide_graph(4000, 1.016)
    section = lava.export(graph, load_target("loihi2-sim"), tmp_path, ones(graph))
    assert section["parity"]["exact"] is True and section["parity"]["approximate_layers"] == []
    assert all("exact" not in layer for layer in section["quantization"]["layers"])
    assert target_summary(section | {"backend": "lava"}).startswith("fixed point exact: 0 of")

    lif = wide_graph(4000, 1.016)
    lif = lif.with_nodes([n.with_(attrs=dataclasses.replace(n.attrs, kind=NeuronKind.LIF, tau=2.0))
                          if n.name == "sn" else n for n in lif.nodes])
    section = lava.export(lif, load_target("loihi2-sim"), tmp_path, ones(lif))
    assert section["parity"]["exact"] is False and section["parity"]["approximate_layers"] == ["sn"]
    assert "NOT exact (approximate layers: sn)" in target_summary(section | {"backend": "lava"})
