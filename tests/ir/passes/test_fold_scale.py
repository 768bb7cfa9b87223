"""fold_scale: OTTT's x * c folds into the weights that read it, through the ops that commute with it."""

from __future__ import annotations

import pytest
import torch
from graphs import GraphBuilder

from scadeploy.backends.torch_ref import run_graph
from scadeploy.ir.graph import (
    AddAttrs,
    Conv2dAttrs,
    FlattenAttrs,
    LinearAttrs,
    NeuronAttrs,
    Op,
    PoolAttrs,
    ScaleAttrs,
)
from scadeploy.ir.passes.deploy import deployable
from scadeploy.ir.passes.fold_scale import fold_scale, unfolded_scales

T = 4


def _ottt_graph(factor: float, pool: Op = Op.MAXPOOL):
    """conv -> IF -> scale -> pool -> conv -> IF -> scale -> flatten -> linear: OTTT VGG's feature blocks."""
    g = torch.Generator().manual_seed(0)
    b = GraphBuilder((2, 8, 8))
    b.add("conv1", Op.CONV2D, Conv2dAttrs(2, 4, (3, 3), padding=(1, 1), bias=True),
          {"weight": torch.randn(4, 2, 3, 3, generator=g), "bias": torch.rand(4, generator=g)})
    b.add("sn1", Op.NEURON, NeuronAttrs())
    b.add("scale1", Op.SCALE, ScaleAttrs(factor))
    b.add("pool", pool, PoolAttrs((2, 2), (2, 2)))
    b.add("conv2", Op.CONV2D, Conv2dAttrs(4, 4, (3, 3), padding=(1, 1), bias=True),
          {"weight": torch.randn(4, 4, 3, 3, generator=g) * 0.5, "bias": torch.rand(4, generator=g)})
    b.add("sn2", Op.NEURON, NeuronAttrs(v_threshold=0.5))
    b.add("scale2", Op.SCALE, ScaleAttrs(2.74))
    b.add("flat", Op.FLATTEN, FlattenAttrs())
    b.add("fc", Op.LINEAR, LinearAttrs(64, 3, bias=True), {"weight": torch.randn(3, 64, generator=g),
                                                            "bias": torch.zeros(3)})
    return b.graph(T)


@pytest.mark.parametrize(("factor", "pool"), [(2.74, Op.MAXPOOL), (-1.5, Op.AVGPOOL), (0.0, Op.MAXPOOL)])
def test_scales_fold_into_the_next_weights(factor: float, pool: Op) -> None:
    graph = _ottt_graph(factor, pool)
    folded = fold_scale(graph)
    assert not folded.of_op(Op.SCALE)
    assert folded["pool"].inputs == ("sn1",) and folded["flat"].inputs == ("sn2",)
    assert torch.equal(folded["conv2"].params["weight"], (graph["conv2"].params["weight"].double() * factor).float())
    x = torch.rand(6, 2, 8, 8, generator=torch.Generator().manual_seed(1)) * 2
    ref = run_graph(graph, x, record=True, dtype=torch.float64)
    got = run_graph(folded, x, record=True, dtype=torch.float64)
    assert torch.allclose(ref.logits, got.logits, atol=1e-6, rtol=0)
    for name in ("sn1", "sn2"):
        assert torch.equal(ref.spikes[name], got.spikes[name])
    assert ref.spikes["sn2"].sum() > 0


def test_a_negative_scale_does_not_pass_max_pooling() -> None:
    graph = _ottt_graph(-1.0, Op.MAXPOOL)
    assert [n.name for n in unfolded_scales(graph)] == ["scale1"]
    folded = fold_scale(graph)
    assert [n.name for n in folded.of_op(Op.SCALE)] == ["scale1"]


def test_a_scale_read_by_an_add_stays_and_deployable_folds_the_rest() -> None:
    b = GraphBuilder((2, 4, 4))
    b.add("conv", Op.CONV2D, Conv2dAttrs(2, 2, (1, 1)), {"weight": torch.ones(2, 2, 1, 1)})
    b.add("sn", Op.NEURON, NeuronAttrs())
    b.add("half", Op.SCALE, ScaleAttrs(0.5))
    b.add("sum", Op.ADD, AddAttrs(), inputs=("half", "sn"))
    b.add("twice", Op.SCALE, ScaleAttrs(2.0), inputs=("sn",))
    b.add("w", Op.CONV2D, Conv2dAttrs(2, 2, (1, 1)), {"weight": torch.ones(2, 2, 1, 1)}, inputs=("twice",))
    b.add("out", Op.ADD, AddAttrs(), inputs=("sum", "w"))
    graph = b.graph(T)
    assert [n.name for n in unfolded_scales(graph)] == ["half"]
    out = deployable(graph)
    assert [n.name for n in out.of_op(Op.SCALE)] == ["half"] and out["w"].inputs == ("sn",)
    assert out["w"].params["weight"].unique().tolist() == [2.0]


@pytest.mark.slow
def test_ottt_vgg_scales_all_fold_and_no_spike_changes() -> None:
    """spikingjelly's ottt_spiking_vggws (weight-standardized convs, Scale(2.74) after every neuron), IF neurons."""
    from spikingjelly.activation_based import neuron
    from spikingjelly.activation_based.model.spiking_vggws_ottt import ottt_spiking_vggws

    from scadeploy.frontends.trace import trace_model

    torch.manual_seed(0)
    graph = trace_model(ottt_spiking_vggws(spiking_neuron=neuron.IFNode, num_classes=10).eval(), (3, 16, 16), 2)
    assert [n.attrs.factor for n in graph.of_op(Op.SCALE)] == [2.74] * 8
    folded = deployable(graph)
    assert not folded.of_op(Op.SCALE)
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    ref = run_graph(graph, x, record=True, dtype=torch.float64)
    got = run_graph(folded, x, record=True, dtype=torch.float64)
    assert all(torch.equal(s, got.spikes[name]) for name, s in ref.spikes.items())
    assert torch.allclose(ref.logits, got.logits, atol=1e-6, rtol=0) and sum(s.sum() for s in ref.spikes.values()) > 0
