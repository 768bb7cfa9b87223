"""A NIR file holding SEW ResNet's AND/IAND neurons (memoryless CubaLIF) reads back as the same network."""

from __future__ import annotations

import pytest
import torch
from sew_support import frames, narrow_sew_resnet

from scadeploy.backends.nir.export import to_nir
from scadeploy.backends.torch_ref import run_graph
from scadeploy.compiler import compile_model
from scadeploy.errors import UnsupportedError
from scadeploy.frontends.nir import nir_to_graph
from scadeploy.ir.graph import Op
from scadeploy.ir.neuron import is_memoryless

nir = pytest.importorskip("nir")


@pytest.mark.parametrize("cnf", ["AND", "IAND"])
def test_exported_sew_resnet_reads_back_with_memoryless_neurons(cnf: str) -> None:
    x = frames((3, 16, 16), 4)
    graph = compile_model(narrow_sew_resnet(cnf), None, x, timesteps=4).deployable
    back, _ = nir_to_graph(to_nir(graph), timesteps=4)
    products = [n.name.replace(".", "_") for n in graph.of_op(Op.MUL)]
    assert all(is_memoryless(back[name].attrs) for name in products)
    ref = run_graph(graph, x, record=True, dtype=torch.float64)
    got = run_graph(back, x, record=True, dtype=torch.float64)
    assert torch.allclose(ref.logits, got.logits, atol=1e-9, rtol=0)
    assert sum(int(s.sum()) for s in ref.spikes.values()) == \
        sum(int(s.sum()) for name, s in got.spikes.items() if name not in products + ["maxpool"])


def test_a_cuba_lif_with_memory_is_refused() -> None:
    graph = nir.NIRGraph.from_list(nir.Input(input_type={"input": torch.Size([2])}),
                                   nir.Linear(weight=torch.eye(2).numpy()),
                                   nir.CubaLIF(tau_syn=torch.full((2,), 2e-4).numpy(),
                                               tau_mem=torch.full((2,), 1e-4).numpy(), r=torch.ones(2).numpy(),
                                               v_leak=torch.zeros(2).numpy(), v_threshold=torch.ones(2).numpy(),
                                               v_reset=torch.zeros(2).numpy()),
                                   nir.Output(output_type={"output": torch.Size([2])}))
    with pytest.raises(UnsupportedError, match="CubaLIF with tau_syn / dt = 2, .* has memory"):
        nir_to_graph(graph, timesteps=2)
