"""distribute_sums: weights reading a sum of spike maps read each map; the graph computes the same."""

from __future__ import annotations

import torch
from graphs import GraphBuilder

from scadeploy.backends.torch_ref import run_graph
from scadeploy.ir.graph import (
    AddAttrs,
    Conv2dAttrs,
    FlattenAttrs,
    LinearAttrs,
    MeanOverTimeAttrs,
    NeuronAttrs,
    Op,
    PoolAttrs,
)
from scadeploy.ir.passes.distribute_sums import CHAIN, distribute_sums, terms

T = 4


def _integers(*shape: int, seed: int) -> torch.Tensor:
    """Small integer weights: every sum is exact, so both graphs must agree bit for bit."""
    return torch.randint(-3, 4, shape, generator=torch.Generator().manual_seed(seed)).float()


def _graph():
    """Three spike maps s0, s1, s2 summed as add(add(s0, s1), s2) (a SEW ADD chain), read by a conv with bias
    into a neuron sn, and by the head avgpool -> flatten -> mean -> linear (bias); sn reaches the output
    through its own linear, and the output reads the sum of both linears."""
    b = GraphBuilder((2, 4, 4))
    for i in range(3):
        b.add(f"w{i}", Op.CONV2D, Conv2dAttrs(2, 3, (3, 3), padding=(1, 1)), {"weight": _integers(3, 2, 3, 3, seed=i)},
              inputs=("input",))
        b.add(f"s{i}", Op.NEURON, NeuronAttrs(v_threshold=2.0))
    b.add("sum01", Op.ADD, AddAttrs(), inputs=("s0", "s1"))
    b.add("sum", Op.ADD, AddAttrs(), inputs=("sum01", "s2"))
    b.add("conv", Op.CONV2D, Conv2dAttrs(3, 3, (3, 3), padding=(1, 1), bias=True),
          {"weight": _integers(3, 3, 3, 3, seed=5), "bias": torch.tensor([0.5, -1.0, 2.0])}, inputs=("sum",))
    b.add("sn", Op.NEURON, NeuronAttrs(v_threshold=3.0))
    b.add("sn.flat", Op.FLATTEN, FlattenAttrs())
    b.add("sn.mean", Op.MEAN_OVER_TIME, MeanOverTimeAttrs())
    b.add("sn.fc", Op.LINEAR, LinearAttrs(48, 5), {"weight": _integers(5, 48, seed=7)})
    b.add("pool", Op.AVGPOOL, PoolAttrs((2, 2), (2, 2)), inputs=("sum",))
    b.add("flat", Op.FLATTEN, FlattenAttrs())
    b.add("mean", Op.MEAN_OVER_TIME, MeanOverTimeAttrs())
    b.add("fc", Op.LINEAR, LinearAttrs(12, 5, bias=True), {"weight": _integers(5, 12, seed=6), "bias": torch.ones(5)})
    b.add("logits", Op.ADD, AddAttrs(), inputs=("fc", "sn.fc"))
    return b.graph(T)


def test_nested_sums_expand_into_their_terms() -> None:
    graph = _graph()
    assert terms(graph, "sum") == ["s0", "s1", "s2"] and terms(graph, "s0") == ["s0"]


def test_weights_read_spikes_and_the_graph_computes_the_same() -> None:
    graph = _graph()
    out = distribute_sums(graph)
    for node in out.of_op(Op.CONV2D, Op.LINEAR):
        source = out[node.inputs[0]]
        while source.op in CHAIN:
            source = out[source.inputs[0]]
        assert source.op in (Op.NEURON, Op.INPUT), node.name
    assert "sum" not in out and "sum01" not in out  # nothing reads them any more
    assert out["conv"].op is Op.ADD and out["conv"].inputs == ("conv.term0", "conv.term1", "conv.term2")
    assert out["sn"].inputs == ("conv",)
    assert [out[f"conv.term{i}"].inputs for i in range(3)] == [("s0",), ("s1",), ("s2",)]
    assert "bias" in out["conv.term0"].params and out["conv.term0"].attrs.bias
    assert all("bias" not in out[f"{p}.term{i}"].params for p in ("conv", "fc") for i in (1, 2))
    assert out["logits"].inputs == ("fc.term0", "fc.term1", "fc.term2", "sn.fc")  # the readout sums its terms
    assert out["fc.term2"].inputs == ("mean.term2",) and out["mean.term2"].inputs == ("flat.term2",)
    assert out["flat.term2"].inputs == ("pool.term2",) and out["pool.term2"].inputs == ("s2",)
    x = torch.randint(0, 5, (8, 2, 4, 4), generator=torch.Generator().manual_seed(1)).float()
    ref = run_graph(graph, x, record=True, dtype=torch.float64)
    got = run_graph(out, x, record=True, dtype=torch.float64)
    assert torch.equal(ref.logits, got.logits)
    assert set(ref.spikes) == set(got.spikes)
    for name, spikes in ref.spikes.items():
        assert torch.equal(spikes, got.spikes[name]), name
    assert ref.spikes["sn"].sum() > 0 and all(ref.spikes[f"s{i}"].sum() > 0 for i in range(3))


def test_a_sum_of_analog_values_is_left_alone() -> None:
    b = GraphBuilder((2, 4, 4))
    b.add("w0", Op.CONV2D, Conv2dAttrs(2, 2, (1, 1)), {"weight": torch.ones(2, 2, 1, 1)}, inputs=("input",))
    b.add("w1", Op.CONV2D, Conv2dAttrs(2, 2, (1, 1)), {"weight": torch.ones(2, 2, 1, 1)}, inputs=("input",))
    b.add("sn", Op.NEURON, NeuronAttrs(), inputs=("w1",))
    b.add("sum", Op.ADD, AddAttrs(), inputs=("w0", "sn"))
    b.add("conv", Op.CONV2D, Conv2dAttrs(2, 2, (1, 1)), {"weight": torch.ones(2, 2, 1, 1)})
    graph = b.graph(T)
    assert distribute_sums(graph) is graph
