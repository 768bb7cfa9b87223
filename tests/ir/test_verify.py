"""The verifier: every op has a shape rule and attributes; broken graphs are named precisely."""

from __future__ import annotations

import pytest
from support import masked_model

from scadeploy.errors import GraphError
from scadeploy.frontends.trace import trace_model
from scadeploy.ir.format import format_graph
from scadeploy.ir.graph import Op
from scadeploy.ir.ops import ATTRS_OF_OP, OPS
from scadeploy.ir.verify import verify


def _digits_graph():
    model, _ = masked_model("digits", 1.0)
    return trace_model(model, (1, 8, 8), 4)


def test_every_op_has_attrs_and_a_shape_rule() -> None:
    assert set(ATTRS_OF_OP) == set(Op)
    assert {op for op, spec in OPS.items() if spec.shape is not None} == set(Op) - {Op.INPUT}


def test_wrong_stored_shape_is_reported() -> None:
    graph = _digits_graph()
    bad = [n.with_(shape=(99, 8, 8)) if n.name == "features.bn1" else n for n in graph.nodes]
    with pytest.raises(GraphError, match="features.bn1.*shape rule gives"):
        verify(graph.with_nodes(bad))


def test_undefined_input_and_duplicate_names_are_reported() -> None:
    graph = _digits_graph()
    nodes = list(graph.nodes)
    with pytest.raises(GraphError, match="not defined before use"):
        verify(graph.with_nodes([nodes[0], *nodes[2:]]))
    with pytest.raises(GraphError, match="duplicate node name"):
        verify(graph.with_nodes([nodes[0], nodes[1], nodes[1], *nodes[2:]]))


def test_parameter_shapes_must_fit() -> None:
    graph = _digits_graph()
    conv = graph["features.conv1"]
    bad = conv.with_(params={"weight": conv.params["weight"][:, :, :2]})
    with pytest.raises(GraphError, match="parameters"):
        verify(graph.with_nodes([bad if n.name == conv.name else n for n in graph.nodes]))


def test_format_graph_is_one_line_per_node() -> None:
    graph = _digits_graph()
    text = format_graph(graph)
    lines = text.splitlines()
    assert len(lines) == len(graph.nodes) + 1
    assert lines[2].split()[:3] == ["features.conv1", "conv2d", "input"]
    assert "params=144" in lines[2]
