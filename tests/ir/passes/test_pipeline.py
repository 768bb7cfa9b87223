"""Passes run in order and are verified after each: a broken result names the pass that made it."""

from __future__ import annotations

import pytest
import torch
from graphs import GraphBuilder

from scadeploy.errors import GraphError
from scadeploy.ir.graph import Conv2dAttrs, NeuronAttrs, Op
from scadeploy.ir.passes.deploy import DEPLOY_PASSES, deployable
from scadeploy.ir.passes.pipeline import Pass, run_passes


def _graph():
    b = GraphBuilder((1, 3, 3))
    b.add("conv", Op.CONV2D, Conv2dAttrs(1, 2, (1, 1)), {"weight": torch.ones(2, 1, 1, 1)})
    b.add("sn", Op.NEURON, NeuronAttrs())
    return b.graph()


def test_passes_run_in_order():
    seen = []
    passes = [Pass(name, lambda g, name=name: seen.append(name) or g) for name in ("a", "b", "c")]
    assert run_passes(_graph(), passes) is not None and seen == ["a", "b", "c"]


def test_a_pass_that_breaks_the_graph_is_named():
    def wrong_shape(graph):
        return graph.with_nodes([n.with_(shape=(3, 3, 3)) if n.name == "sn" else n for n in graph])

    with pytest.raises(GraphError, match="pass 'wrong_shape' left a broken graph: node 'sn'"):
        run_passes(_graph(), [Pass("identity", lambda g: g), Pass("wrong_shape", wrong_shape)])


def test_deployable_is_the_deploy_pipeline():
    assert [p.name for p in DEPLOY_PASSES] == ["fold_batchnorm", "fold_adaptive_pool", "fold_scale", "float32_params"]
    graph = _graph()
    assert [n.name for n in deployable(graph)] == [n.name for n in graph]
