"""model.nir read back by importers no one here wrote, compared with the torch reference spike by spike."""

from __future__ import annotations

import pytest
import torch
from own_model.nets import OwnNet
from spikingjelly.activation_based import layer, neuron
from support import INPUT_SHAPES, masked_model
from torch import nn

from scadeploy.backends.nir import export, peers
from scadeploy.compiler import compile_model
from scadeploy.errors import UnsupportedError
from scadeploy.models import randomize_batchnorm

nir = pytest.importorskip("nir")


def _deployable(model: nn.Module, masks: dict | None, shape: tuple[int, ...]):
    x = torch.rand(6, *shape, generator=torch.Generator().manual_seed(1)) * 2
    return compile_model(model, masks, x, 4).deployable, x


def _write(graph, tmp_path, dt: float = export.DEFAULT_DT):
    path = tmp_path / "model.nir"
    nir.write(path, export.to_nir(graph, dt))
    return path


@pytest.mark.parametrize("neuron_kind", ["if", "lif"])
def test_digits_through_spikingjelly_is_spike_exact(tmp_path, neuron_kind: str) -> None:
    model, masks = masked_model("digits", 0.5, neuron_kind)
    graph, x = _deployable(model, masks, INPUT_SHAPES["digits"])
    parity = peers.spikingjelly_parity(_write(graph, tmp_path), graph, x, export.DEFAULT_DT).to_dict()
    assert parity["neuron_layers_compared"] == parity["neuron_layers"] == 3
    assert parity["spike_mismatches"] == 0 and parity["spikes_compared"] > 0
    assert parity["max_logit_diff"] < 1e-5


def test_residual_network_with_per_step_head_through_spikingjelly_is_spike_exact(tmp_path) -> None:
    torch.manual_seed(0)
    model = randomize_batchnorm(OwnNet(), torch.Generator().manual_seed(0)).eval()
    graph, x = _deployable(model, None, (1, 8, 8))
    nir_graph = export.to_nir(graph)
    assert len([e for e in nir_graph.edges if e[1] == "block_lif2"]) == 2  # the residual add is a fan-in
    assert "add" not in {type(n).__name__.lower() for n in nir_graph.nodes.values()}
    parity = peers.spikingjelly_parity(_write(graph, tmp_path), graph, x, export.DEFAULT_DT).to_dict()
    assert parity["neuron_layers_compared"] == 3 and parity["spike_mismatches"] == 0
    assert parity["max_logit_diff"] < 1e-5


def _lif_net(decay_input: bool, v_reset: float = 0.0) -> nn.Module:
    torch.manual_seed(0)
    net = nn.Sequential(layer.Conv2d(1, 8, 3, padding=1, step_mode="m"), layer.BatchNorm2d(8, step_mode="m"),
                        neuron.LIFNode(tau=2.0, decay_input=decay_input, v_reset=v_reset, step_mode="m"),
                        layer.Flatten(step_mode="m"), layer.Linear(8 * 64, 10, step_mode="m"))
    return randomize_batchnorm(net, torch.Generator().manual_seed(0)).eval()


@pytest.mark.parametrize("decay_input", [False, True])
def test_snntorch_agrees_on_lif_resetting_to_zero(tmp_path, decay_input: bool) -> None:
    """snnTorch's Leaky (beta = 1 - dt/tau, reset to zero) is our LIF with v_reset=0; for decay_input
    (r = 1) it scales the threshold by tau instead of the input, which is the same dynamics."""
    pytest.importorskip("snntorch")
    graph, x = _deployable(_lif_net(decay_input), {}, (1, 8, 8))
    logits, spikes = peers.run_snntorch(_write(graph, tmp_path), graph, x)
    measured = peers.compare(graph, x, logits, spikes, "snntorch").to_dict()
    assert measured["neuron_layers_compared"] == 1 and measured["spike_mismatches"] == 0
    assert measured["max_logit_diff"] < 1e-5


@pytest.mark.parametrize("kind, message", [
    ("lif-v-reset", "v_leak not supported"),  # snnTorch's LIF leaks to 0 only
    ("if", "r != 1 not supported"),  # IF needs r = 1/dt; snnTorch asserts r == 1
])
def test_snntorch_refuses_what_it_cannot_express(tmp_path, kind: str, message: str) -> None:
    pytest.importorskip("snntorch")
    if kind == "if":
        model, masks = masked_model("digits", 1.0, "if")
        graph, x = _deployable(model, masks, INPUT_SHAPES["digits"])
    else:
        graph, x = _deployable(_lif_net(True, v_reset=-0.5), {}, (1, 8, 8))
    with pytest.raises((AssertionError, NotImplementedError), match=message):
        peers.run_snntorch(_write(graph, tmp_path), graph, x)


def test_what_nir_cannot_express_is_refused_in_one_error() -> None:
    model = nn.Sequential(layer.Conv2d(1, 4, 3, padding=1, step_mode="m"),
                          neuron.IFNode(v_reset=None, step_mode="m"), layer.MaxPool2d(2, 2, step_mode="m"),
                          layer.Flatten(step_mode="m"), layer.Linear(64, 3, step_mode="m")).eval()
    graph, _ = _deployable(model, {}, (1, 8, 8))
    with pytest.raises(UnsupportedError, match="soft reset"):
        export.to_nir(graph)
