"""The op registry is complete: every op has a shape and reference rule, every backend lowers or refuses it."""

from __future__ import annotations

import enum
from pathlib import Path

import torch
from graphs import GraphBuilder

from scadeploy.backends import op_tables
from scadeploy.ir import reference
from scadeploy.ir.graph import AddAttrs, Conv2dAttrs, NeuronAttrs, Op
from scadeploy.ir.ops import OPS, BackendOps, OpSpec, registry_problems

DOCS = Path(__file__).resolve().parents[2] / "docs" / "layers.md"


class _Dummy(enum.Enum):
    DUMMY = "dummy"


def test_every_op_is_complete_in_every_backend():
    assert set(OPS) == set(Op)
    assert op_tables.problems() == []


def test_a_new_op_without_rules_is_reported():
    dummy = OpSpec(_Dummy.DUMMY, object, "a test op", None, reference.no_rule)
    tables = op_tables.backend_tables()
    problems = registry_problems({**OPS, _Dummy.DUMMY: dummy}, tables)
    assert "op dummy has no shape rule" in problems
    assert "op dummy has no reference rule" in problems
    for table in tables:
        assert f"backend {table.backend} neither lowers nor refuses op dummy" in problems


def test_a_refused_op_is_named_with_its_node_and_reason():
    table = BackendOps("test")
    table.refuse(Op.ADD, "no adder here")
    table.lower(Op.CONV2D, "Conv")
    b = GraphBuilder((2, 4, 4))
    conv = b.add("conv", Op.CONV2D, Conv2dAttrs(2, 2, (1, 1)), {"weight": torch.ones(2, 2, 1, 1)})
    spikes = b.add("sn", Op.NEURON, NeuronAttrs())
    b.add("sum", Op.ADD, AddAttrs(), inputs=(conv, spikes))
    assert table.refusals(b.graph()) == ["'sum' (add): no adder here"]


def test_the_layer_table_in_the_docs_is_current():
    doc = DOCS.read_text()
    assert op_tables.with_layer_table(doc) == doc, "run `make docs` to regenerate docs/layers.md"
