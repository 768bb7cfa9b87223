"""SEW ResNets on Loihi: AND/IAND as memoryless neurons, ADD with its weights distributed over the summed
spike maps, scales folded; the emulator reproduces the integer graph spike for spike."""

from __future__ import annotations

import pytest
import torch
from graphs import GraphBuilder
from sew_support import CONNECTIONS, frames, narrow_sew_resnet, sew_resnet18

from scadeploy.backends.lava import export as lava
from scadeploy.backends.lava.netx import read_net
from scadeploy.backends.lava.rewrites import rewrite_for_lava
from scadeploy.backends.torch_ref import run_graph
from scadeploy.compiler import compile_model
from scadeploy.errors import UnsupportedError
from scadeploy.ir.agreement import TOLERANCES
from scadeploy.ir.graph import Conv2dAttrs, MulAttrs, NeuronAttrs, Op, ScaleAttrs
from scadeploy.ir.neuron import is_memoryless
from scadeploy.targets import load_target
from scadeploy.targets.backend_options import LavaOptions

SHAPE = (3, 16, 16)
T = 4


def _deployable(cnf: str, samples: int = 8):
    x = frames(SHAPE, samples)
    return compile_model(narrow_sew_resnet(cnf), None, x, timesteps=T).deployable, x


@pytest.mark.parametrize("cnf", CONNECTIONS)
def test_rewritten_sew_resnet_spikes_identically(cnf: str) -> None:
    graph, x = _deployable(cnf)
    rewritten = rewrite_for_lava(graph)
    assert not rewritten.of_op(Op.MUL, Op.COMPLEMENT, Op.SCALE, Op.MAXPOOL, Op.AVGPOOL)
    for node in rewritten.of_op(Op.ADD):
        assert all(rewritten[i].op in (Op.CONV2D, Op.LINEAR) for i in node.inputs), node.name
    ref = run_graph(graph, x, record=True, dtype=torch.float64)
    out = run_graph(rewritten, x, record=True, dtype=torch.float64)
    assert torch.allclose(ref.logits, out.logits, atol=1e-9, rtol=0)
    for name, spikes in ref.spikes.items():
        assert torch.equal(spikes, out.spikes[name]), name
    for product in graph.of_op(Op.MUL):  # each product is a memoryless neuron of the same name
        assert is_memoryless(rewritten[product.name].attrs)
        assert out.spikes[product.name].sum() > 0


@pytest.mark.parametrize("cnf", ["AND", "IAND"])
def test_logic_neurons_quantize_exactly_with_full_decay(cnf: str) -> None:
    graph, x = _deployable(cnf)
    net, report, _ = lava.lower_graph(graph, LavaOptions(), float(x.max()))
    for product in graph.of_op(Op.MUL):
        q = report.layers[product.name]
        threshold = 2 if cnf == "AND" else 1
        assert q.exact and q.scale == 1.0 and q.threshold == threshold and q.vth_mant == threshold - 1
        assert (q.i_decay, q.v_decay) == (4096, 4096)
        layer = net[product.name]
        assert (layer.i_decay, layer.v_decay, layer.vth) == (4096, 4096, threshold - 1)
        weights = sorted(int(e.weight.max()) if e.weight.max() > 0 else int(e.weight.min()) for e in layer.edges)
        assert weights == ([1, 1] if cnf == "AND" else [-1, 1])


def test_add_head_reads_each_summed_spike_map_through_one_readout() -> None:
    graph, x = _deployable("ADD")
    net, report, qgraph = lava.lower_graph(graph, LavaOptions(), float(x.max()))
    readout = net[net.output]
    assert not readout.spiking and report.readout == "fc" and net.output == "fc"
    assert [e.source for e in readout.edges] == ["layer4.0.downsample_sn", "layer4.0.sn2"]  # the last sum's terms
    assert report.layers["fc"].producers == ("fc.term0", "fc.term1")
    assert all(not e.is_conv and e.flatten for e in readout.edges)
    assert all(n.op is not Op.ADD or all(c.op is Op.NEURON for c in qgraph.consumers(n.name)) or n.name == "fc"
               for n in qgraph.nodes)


@pytest.mark.parametrize("cnf", CONNECTIONS)
def test_emulator_reproduces_the_integer_graph(tmp_path, cnf: str) -> None:
    graph, x = _deployable(cnf, samples=16)
    section = lava.export(graph, load_target("loihi2-sim"), tmp_path, x)
    parity = section["parity"]
    measured = parity["emulator_vs_quantized_ir"]
    assert parity["exact"] and parity["approximate_layers"] == []
    assert measured["spike_mismatches"] == 0 and measured["spikes_compared"] > 0
    assert measured["max_logit_diff"] <= TOLERANCES.exact
    assert section["runner"].startswith("lava process graph")
    back = read_net(tmp_path / "model.net")  # the readout with one edge per summed map reads back
    assert back.output == ("fc" if cnf == "ADD" else back.output) and len(back[back.output].edges) >= 1


@pytest.mark.slow
def test_full_sew_resnet18_add_compiles_for_loihi_with_an_exact_emulator(tmp_path) -> None:
    """The required outcome: spikingjelly's sew_resnet18(cnf='ADD', IF) at 3x16x16."""
    x = frames(SHAPE, 4)
    graph = compile_model(sew_resnet18("ADD"), None, x, timesteps=2).deployable
    parity = lava.export(graph, load_target("loihi2-sim"), tmp_path, x)["parity"]
    assert parity["exact"] and parity["emulator_vs_quantized_ir"]["spike_mismatches"] == 0
    assert parity["emulator_vs_quantized_ir"]["spikes_compared"] > 100_000


def _graph_with(last: str):
    b = GraphBuilder((2, 4, 4))
    b.add("w", Op.CONV2D, Conv2dAttrs(2, 2, (1, 1)), {"weight": torch.ones(2, 2, 1, 1)})
    b.add("sn", Op.NEURON, NeuronAttrs())
    if last == "analog product":
        b.add("gate", Op.MUL, MulAttrs(), inputs=("w", "sn"))
    else:
        b.add("scaled", Op.SCALE, ScaleAttrs(2.0))
    return b.graph(T)


def test_products_of_analog_values_and_unfoldable_scales_are_refused_by_name() -> None:
    with pytest.raises(UnsupportedError) as info:
        lava.check_supported(_graph_with("analog product"), load_target("loihi2-sim"))
    assert "mul 'gate' reads 'w', which is not binary spikes" in info.value.message
    assert "a Loihi neuron only sums weighted spikes" in info.value.message
    problems = lava.lowering_problems(_graph_with("scale"))
    assert problems == ["scale 'scaled' is read by something other than conv/linear weights it could fold into "
                        "(Loihi multiplies only at synapses)"]
