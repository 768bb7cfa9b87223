"""SEW ResNets as NIR: products and complements of spikes become memoryless CubaLIF neurons that
spikingjelly's importer reproduces spike for spike; sums are fan-in edges; scales fold into weights."""

from __future__ import annotations

import pytest
import torch
from graphs import GraphBuilder
from sew_support import CONNECTIONS, frames, narrow_sew_resnet

from scadeploy.backends.nir import export, peers
from scadeploy.backends.nir.rewrites import rewrite_for_nir
from scadeploy.backends.torch_ref import run_graph
from scadeploy.compiler import compile_model
from scadeploy.errors import UnsupportedError
from scadeploy.ir.graph import Conv2dAttrs, MulAttrs, NeuronAttrs, Op, ScaleAttrs
from scadeploy.ir.nir_conventions import nir_name

nir = pytest.importorskip("nir")

SHAPE = (3, 16, 16)


@pytest.mark.parametrize("cnf", CONNECTIONS)
def test_sew_resnet_through_spikingjelly_is_spike_exact(tmp_path, cnf: str) -> None:
    x = frames(SHAPE, 8)
    graph = compile_model(narrow_sew_resnet(cnf), None, x, timesteps=4).deployable
    nir_graph = export.to_nir(graph)
    path = tmp_path / "model.nir"
    nir.write(path, nir_graph)
    parity = peers.spikingjelly_parity(path, graph, x, export.DEFAULT_DT).to_dict()
    assert parity["neuron_layers_compared"] == parity["neuron_layers"] > 0
    assert parity["spike_mismatches"] == 0 and parity["spikes_compared"] > 0
    assert parity["max_logit_diff"] < 1e-5 and parity["class_agreement"] == 1.0
    products = graph.of_op(Op.MUL)
    for product in products:
        node = nir_graph.nodes[nir_name(product.name)]
        assert isinstance(node, nir.CubaLIF)
        assert (node.tau_syn == export.DEFAULT_DT).all() and (node.tau_mem == export.DEFAULT_DT).all()
    # Measured on the rewritten graph too, whose neurons include the AND/IAND neurons themselves.
    rewritten = rewrite_for_nir(graph)
    logic = peers.spikingjelly_parity(path, rewritten, x, export.DEFAULT_DT).to_dict()
    pools = graph.of_op(Op.MAXPOOL)  # the stem's max pooling is an OR neuron there
    assert logic["neuron_layers_compared"] == logic["neuron_layers"] == parity["neuron_layers"] + len(products) + \
        len(pools)
    assert logic["spike_mismatches"] == 0 and logic["max_logit_diff"] < 1e-5
    fired = run_graph(rewritten, x, record=True).spikes
    assert all(fired[p.name].sum() > 0 for p in products)


def test_iand_reads_plus_and_minus_one_identity_convs() -> None:
    x = frames(SHAPE, 2)
    graph = compile_model(narrow_sew_resnet("IAND"), None, x, timesteps=2).deployable
    nir_graph = export.to_nir(graph)
    product = nir_name(graph.of_op(Op.MUL)[0].name)
    sources = sorted(s for s, t in nir_graph.edges if t == product)
    assert sources == [f"{product}_in0", f"{product}_in1"]
    weights = [nir_graph.nodes[s].weight for s in sources]
    assert [float(w.sum()) for w in weights] == [8.0, -8.0] and all(w.shape == (8, 8, 1, 1) for w in weights)
    assert nir_graph.nodes[product].v_threshold.max() == 1.0


def _graph_with(last: str):
    b = GraphBuilder((2, 4, 4))
    b.add("w", Op.CONV2D, Conv2dAttrs(2, 2, (1, 1)), {"weight": torch.ones(2, 2, 1, 1)})
    b.add("sn", Op.NEURON, NeuronAttrs())
    if last == "analog product":
        b.add("gate", Op.MUL, MulAttrs(), inputs=("w", "sn"))
    else:
        b.add("scaled", Op.SCALE, ScaleAttrs(2.0))
    return b.graph(4)


def test_analog_products_and_unfoldable_scales_are_refused_by_name() -> None:
    with pytest.raises(UnsupportedError) as info:
        export.to_nir(_graph_with("analog product"))
    assert "mul 'gate' reads 'w', which is not binary spikes" in info.value.message
    assert "NIR has no product of two signals" in info.value.message
    problems = export.lowering_problems(_graph_with("scale"))
    assert problems == ["scale 'scaled' is read by something other than conv/linear weights it could fold into "
                        "(NIR's Scale node is not read by spikingjelly's importer)"]
