"""IR -> spikingjelly module: the rebuilt network computes what the graph (and the traced model) computes."""

from __future__ import annotations

import pytest
import torch
from sew_support import CONNECTIONS, frames, narrow_sew_resnet
from spikingjelly.activation_based import functional

from scadeploy.backends.spikingjelly import to_spikingjelly
from scadeploy.backends.torch_ref import run_graph
from scadeploy.frontends.trace import trace_model
from scadeploy.ir.graph import Op, ScaleAttrs
from scadeploy.models import encode_direct


@pytest.mark.parametrize("cnf", CONNECTIONS)
def test_rebuilt_sew_resnet_matches_the_graph_and_the_model(cnf: str) -> None:
    model = narrow_sew_resnet(cnf)
    graph = trace_model(model, (3, 16, 16), timesteps=3)
    rebuilt = to_spikingjelly(graph)
    x = frames((3, 16, 16), 4)
    with torch.no_grad():
        logits = rebuilt(encode_direct(x, 3))
        functional.reset_net(model)
        functional.set_step_mode(model, "m")
        eager = model(encode_direct(x, 3)).mean(0)
    assert torch.equal(logits, run_graph(graph, x).logits) and torch.equal(logits, eager)


def test_a_scale_is_computed_in_forward() -> None:
    graph = trace_model(narrow_sew_resnet("AND"), (3, 16, 16), timesteps=2)
    product = graph.of_op(Op.MUL)[-1]
    nodes = []
    for node in graph.nodes:  # scale the last product by 2.74 before the head reads it
        if node.inputs == (product.name,):
            nodes.append(node.with_(inputs=("scaled",)))
        else:
            nodes.append(node)
        if node is product:
            nodes.append(node.with_(name="scaled", op=Op.SCALE, inputs=(product.name,), attrs=ScaleAttrs(2.74)))
    scaled = graph.with_nodes(nodes)
    x = frames((3, 16, 16), 4)
    with torch.no_grad():
        assert torch.equal(to_spikingjelly(scaled)(encode_direct(x, 2)), run_graph(scaled, x).logits)
