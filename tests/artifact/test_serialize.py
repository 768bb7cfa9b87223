"""Graphs survive save_graph -> load_graph: every op's attributes decode, the element-wise ops included."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from graphs import GraphBuilder

from scadeploy.artifact.serialize import DECODERS, load_graph, save_graph
from scadeploy.ir.graph import ComplementAttrs, Conv2dAttrs, MulAttrs, NeuronAttrs, Op, ScaleAttrs
from scadeploy.ir.ops import OPS


@pytest.mark.parametrize("op", list(OPS), ids=lambda op: op.value)
def test_every_attribute_field_has_a_decoder(op: Op) -> None:
    for f in dataclasses.fields(OPS[op].attrs):
        assert str(f.type) in DECODERS, f"{op.value}.{f.name}: {f.type}"


def _graph_with(op: Op):
    b = GraphBuilder((2, 3, 3))
    b.add("conv", Op.CONV2D, Conv2dAttrs(2, 2, (1, 1), bias=True), {"weight": torch.randn(2, 2, 1, 1),
                                                                      "bias": torch.randn(2)})
    b.add("sn", Op.NEURON, NeuronAttrs())
    if op is Op.MUL:
        b.add("node", Op.MUL, MulAttrs(), inputs=("sn", "conv"))
    elif op is Op.COMPLEMENT:
        b.add("node", Op.COMPLEMENT, ComplementAttrs())
    else:
        b.add("node", Op.SCALE, ScaleAttrs(2.74))
    return b.graph(timesteps=3)


@pytest.mark.parametrize("op", [Op.MUL, Op.COMPLEMENT, Op.SCALE], ids=lambda op: op.value)
def test_element_wise_op_round_trips(tmp_path, op: Op) -> None:
    graph = _graph_with(op)
    save_graph(graph, tmp_path, "g")
    back = load_graph(tmp_path / "g.graph.json")
    assert [(n.name, n.op, n.inputs, n.attrs, n.shape) for n in back] == \
        [(n.name, n.op, n.inputs, n.attrs, n.shape) for n in graph]
    assert back["node"].attrs == graph["node"].attrs
    for node in graph:
        for key, value in node.params.items():
            assert torch.equal(back[node.name].params[key], value)


def test_scale_factor_round_trips_bit_for_bit(tmp_path) -> None:
    graph = _graph_with(Op.SCALE)
    graph = graph.with_nodes([n.with_(attrs=ScaleAttrs(0.1 + 0.2)) if n.name == "node" else n for n in graph])
    save_graph(graph, tmp_path, "g")
    assert load_graph(tmp_path / "g.graph.json")["node"].attrs.factor == 0.1 + 0.2
