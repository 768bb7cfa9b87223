"""lava_rewrites: pooling and identity shortcuts rewritten into synapse layers without changing a spike."""

from __future__ import annotations

import pytest
import torch
from lava_support import CASES, folded_graph, frames

from scadeploy.backends.lava.rewrites import rewrite_for_lava, rewrite_problems
from scadeploy.backends.torch_ref import run_graph
from scadeploy.errors import UnsupportedError
from scadeploy.ir.graph import Conv2dAttrs, Graph, InputAttrs, Node, Op, OutputAttrs, PoolAttrs
from scadeploy.ir.verify import verify


@pytest.mark.parametrize("case", ["digits", "vgg", "resnet"])
def test_rewritten_graph_spikes_identically(case):
    graph = folded_graph(case)
    rewritten = rewrite_for_lava(graph)
    assert not rewritten.of_op(Op.MAXPOOL, Op.AVGPOOL)
    for add in rewritten.of_op(Op.ADD):
        assert all(rewritten[i].op in (Op.CONV2D, Op.LINEAR) for i in add.inputs)
    x = frames(CASES[case][2], 16)
    ref = run_graph(graph, x, record=True, dtype=torch.float64)
    out = run_graph(rewritten, x, record=True, dtype=torch.float64)
    assert torch.allclose(ref.logits, out.logits, atol=1e-9)
    for name, spikes in ref.spikes.items():
        assert torch.equal(spikes, out.spikes[name]), name
    pools = [n for n in graph.of_op(Op.MAXPOOL)]
    for pool in pools:  # the OR neuron keeps the pool's name and reproduces the max of spikes
        assert rewritten[pool.name].op is Op.NEURON
        assert out.spikes[pool.name].sum() > 0


def _avgpool_conv_graph() -> Graph:
    g = torch.Generator().manual_seed(0)
    conv = Conv2dAttrs(2, 3, (3, 3), padding=(1, 1), bias=True)
    nodes = [
        Node("input", Op.INPUT, (), InputAttrs(), (2, 8, 8)),
        Node("pool", Op.AVGPOOL, ("input",), PoolAttrs((2, 2), (2, 2)), (2, 4, 4)),
        Node("conv", Op.CONV2D, ("pool",), conv, (3, 4, 4),
             {"weight": torch.randn(3, 2, 3, 3, generator=g), "bias": torch.randn(3, generator=g)}),
        Node("output", Op.OUTPUT, ("conv",), OutputAttrs(), (3, 4, 4)),
    ]
    return verify(Graph(tuple(nodes), 2))


def test_average_pool_folds_into_the_next_conv():
    graph = _avgpool_conv_graph()
    rewritten = rewrite_for_lava(graph)
    conv = rewritten["conv"]
    assert conv.inputs == ("input",) and conv.attrs.kernel_size == (6, 6) and conv.attrs.stride == (2, 2)
    x = torch.rand(4, 2, 8, 8, dtype=torch.float64)
    assert torch.allclose(run_graph(graph, x, dtype=torch.float64).logits,
                          run_graph(rewritten, x, dtype=torch.float64).logits, atol=1e-6)


def test_unexpressible_pooling_is_listed():
    graph = _avgpool_conv_graph()
    bad = graph.with_nodes([n.with_(op=Op.MAXPOOL) if n.name == "pool" else n for n in graph.nodes])
    overlapping = graph.with_nodes([n.with_(attrs=PoolAttrs((2, 2), (1, 1)), shape=(2, 7, 7)) if n.name == "pool"
                                    else n.with_(shape=(3, 7, 7)) if n.name in ("conv", "output") else n
                                    for n in graph.nodes])
    assert "reads analog values" in rewrite_problems(bad)[0]
    assert "kernel == stride" in rewrite_problems(overlapping)[0]
    with pytest.raises(UnsupportedError, match="reads analog values"):
        rewrite_for_lava(bad)
