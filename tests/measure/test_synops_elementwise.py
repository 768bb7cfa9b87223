"""SynOps of SEW ResNets: element-wise ops are not synaptic operations; the layers reading them are counted by
the values they read (0/1 products and complements as ACs, a sum of spikes or a scaled map as MACs)."""

from __future__ import annotations

import pytest
import torch
from graphs import GraphBuilder
from sew_support import frames, narrow_sew_resnet

from scadeploy.frontends.trace import trace_model
from scadeploy.ir.cost import dense_macs, layer_costs
from scadeploy.ir.graph import AddAttrs, ComplementAttrs, Conv2dAttrs, MulAttrs, NeuronAttrs, Op, ScaleAttrs
from scadeploy.ir.passes.deploy import deployable
from scadeploy.measure.synops import measure_synops


def _reader_of(kind: str):
    """Spikes a, b -> `kind` of them -> conv `reader` -> IF."""
    b = GraphBuilder((2, 4, 4))
    for name, weight in (("a", torch.eye(2)), ("b", torch.eye(2).flip(0))):  # b swaps the input's channels
        b.add(f"{name}.w", Op.CONV2D, Conv2dAttrs(2, 2, (1, 1)), {"weight": weight.reshape(2, 2, 1, 1) * 2},
              inputs=("input",))
        b.add(name, Op.NEURON, NeuronAttrs(v_threshold=0.5))
    if kind == "iand":
        b.add("not_b", Op.COMPLEMENT, ComplementAttrs(), inputs=("b",))
        b.add("joined", Op.MUL, MulAttrs(), inputs=("a", "not_b"))
    elif kind == "and":
        b.add("joined", Op.MUL, MulAttrs(), inputs=("a", "b"))
    elif kind == "add":
        b.add("joined", Op.ADD, AddAttrs(), inputs=("a", "b"))
    else:
        b.add("joined", Op.SCALE, ScaleAttrs(2.74), inputs=("a",))
    b.add("reader", Op.CONV2D, Conv2dAttrs(2, 2, (3, 3), padding=(1, 1)), {"weight": torch.ones(2, 2, 3, 3)})
    b.add("sn", Op.NEURON, NeuronAttrs())
    return b.graph(timesteps=3)


@pytest.mark.parametrize(("kind", "accumulates"), [("and", True), ("iand", True), ("add", False),
                                                   ("scale", False)])
def test_the_reader_of_an_element_wise_op_counts_by_the_values_it_reads(kind: str, accumulates: bool) -> None:
    graph = _reader_of(kind)
    x = torch.rand(4, 2, 4, 4, generator=torch.Generator().manual_seed(0))
    report = measure_synops(graph, x)
    assert [r.name for r in report.layers] == ["a.w", "b.w", "reader"]  # no row for the element-wise op
    reader = report.layers[-1]
    assert reader.input_rate > 0
    assert (reader.effective_acs > 0 and reader.effective_macs == 0) if accumulates else \
        (reader.effective_macs > 0 and reader.effective_acs == 0)
    assert dense_macs(graph["joined"]) == 0 and "joined" not in {c.name for c in layer_costs(graph)}


def test_a_folded_scale_leaves_its_reader_on_spikes() -> None:
    graph = deployable(_reader_of("scale"))
    x = torch.rand(4, 2, 4, 4, generator=torch.Generator().manual_seed(0))
    reader = measure_synops(graph, x).layers[-1]
    assert reader.effective_acs > 0 and reader.effective_macs == 0


def test_sew_and_resnet_layers_after_the_first_read_spikes_only() -> None:
    graph = deployable(trace_model(narrow_sew_resnet("AND"), (3, 16, 16), timesteps=2))
    report = measure_synops(graph, frames((3, 16, 16), 2))
    assert report.layers[0].effective_macs > 0  # the analog frame
    assert all(r.effective_macs == 0 for r in report.layers[1:])
