"""spikingjelly 2.0's model zoo traces exactly: the trace check sees every spike equal and the logits equal.

Small widths and inputs keep each case a few seconds. Multi-step-only and transformer models are
refused with one line naming the module path and class.
"""

from __future__ import annotations

import copy

import pytest
import torch
from spikingjelly.activation_based import functional, layer, neuron
from spikingjelly.activation_based.model import masnn, ms_resnet, parametric_lif_net, spikformer, spiking_vgg
from spikingjelly.activation_based.model import spiking_vggws_ottt as ottt
from torch import nn

from scadeploy.backends.torch_ref import run_graph
from scadeploy.errors import UnsupportedError
from scadeploy.frontends.trace import trace_model
from scadeploy.ir.agreement import TOLERANCES
from scadeploy.ir.graph import Graph, Op
from scadeploy.ir.passes.deploy import deployable
from scadeploy.models import randomize_batchnorm
from scadeploy.parity import compare_traced


def _built(model: nn.Module, multi_step: bool = True) -> nn.Module:
    """The zoo network with realistic BN statistics, as users run it (multi-step unless built single-step)."""
    torch.manual_seed(0)
    model = randomize_batchnorm(model, torch.Generator().manual_seed(0)).eval()
    if multi_step:
        functional.set_step_mode(model, "m")
    return model


def _trace_checked(model: nn.Module, shape: tuple[int, ...], timesteps: int = 4, exact: bool = True) -> Graph:
    graph = trace_model(model, shape, timesteps)
    fidelity = compare_traced(model, graph, torch.rand(2, *shape) * 2)
    assert fidelity.neuron_layers_compared == len(graph.of_op(Op.NEURON)) and fidelity.spikes_compared > 0
    assert fidelity.spike_mismatches == 0, fidelity
    assert fidelity.max_logit_diff == 0.0 if exact else fidelity.passed, fidelity
    return graph


@pytest.mark.parametrize("factory", [
    lambda: ms_resnet.ms_resnet18(T=4, num_classes=10),
    lambda: ms_resnet.MaxResNet(T=4, num_classes=10, layers=(1, 1, 1), stage_channels=(8, 16, 32),
                                stem_kernel_size=3, stem_stride=1),
], ids=["ms_resnet18", "max_resnet"])
def test_ms_resnet_traces_in_multi_step_mode(factory) -> None:
    """`_to_sequence` branches on x.ndim; the head is `flatten(2)` and `mean(0)` of [T, N, ...] values."""
    graph = _trace_checked(_built(factory(), multi_step=False), (3, 16, 16))
    assert [n.op for n in graph.nodes[-4:]] == [Op.FLATTEN, Op.LINEAR, Op.MEAN_OVER_TIME, Op.OUTPUT]
    assert graph["layer1.0.add"].op is Op.ADD


def test_spiking_vgg_adaptive_pooling_by_replication_traces() -> None:
    """At 32x32 the features are 1x1, which AdaptiveAvgPool2d((7, 7)) replicates."""
    model = _built(spiking_vgg.spiking_vgg11(spiking_neuron=neuron.IFNode, num_classes=10))
    graph = _trace_checked(model, (3, 32, 32))
    assert graph["avgpool"].op is Op.ADAPTIVE_AVGPOOL and graph["avgpool"].shape == (512, 7, 7)


@pytest.mark.parametrize(("net", "shape"), [
    ("MNISTNet", (1, 28, 28)), ("FashionMNISTNet", (1, 28, 28)), ("NMNISTNet", (2, 34, 34)),
    ("CIFAR10Net", (3, 32, 32)),
])
def test_voting_layer_nets_trace(net: str, shape: tuple[int, ...]) -> None:
    model = _built(getattr(parametric_lif_net, net)(channels=8, spiking_neuron=neuron.ParametricLIFNode))
    graph = _trace_checked(model, shape)
    voting = graph[graph.output.inputs[0]]
    assert isinstance(model.get_submodule(voting.name), layer.VotingLayer)
    assert voting.op is Op.LINEAR and voting.shape == (10,) and "bias" not in voting.params
    assert graph.of_op(Op.NEURON)[0].attrs.tau == pytest.approx(2.0)


def test_voting_layer_is_a_fixed_average_that_drops_the_remainder() -> None:
    model = _built(nn.Sequential(layer.Linear(4, 103), neuron.IFNode(), layer.VotingLayer(10)))
    graph = _trace_checked(model, (4,), exact=False)
    weight = graph["2"].params["weight"]
    assert weight.shape == (10, 103) and torch.equal(weight[3, 30:40], torch.full((10,), 0.1, dtype=torch.float64))
    assert weight[:, 100:].abs().sum() == 0 and weight.sum(1).allclose(torch.ones(10, dtype=torch.float64))


class _WeightStandardized(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = layer.WSConv2d(1, 4, 3, padding=1)
        self.sn = neuron.LIFNode(decay_input=False, v_reset=None)
        self.flat = layer.Flatten()
        self.drop = layer.Dropout(0.5)
        self.fc = layer.WSLinear(4 * 8 * 8, 3)

    def forward(self, x):
        return self.fc(self.drop(self.flat(self.sn(self.conv(x)))))


def test_weight_standardized_layers_export_their_standardized_weight() -> None:
    model = _WeightStandardized()
    for p in model.parameters():
        p.data.normal_(0.3, 1.0)
    graph = _trace_checked(_built(model), (1, 8, 8))
    with torch.no_grad():
        assert torch.equal(graph["conv"].params["weight"], model.conv.double().get_weight())
        assert torch.equal(graph["fc"].params["weight"], model.fc.double().get_weight())
        assert deployable(graph)["conv"].params["weight"].dtype == torch.float32


def _single_step_run(model: nn.Module, graph: Graph, x: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """The module stepped T times in single-step mode on frames `x` (float64): logits and every neuron's spikes.
    OTTTLIFNode cannot run multi-step in spikingjelly 2.0.0, where the trace check runs models."""
    module = copy.deepcopy(model).eval().double()
    functional.set_step_mode(module, "s")
    functional.reset_net(module)
    names = {n.name for n in graph.of_op(Op.NEURON)}
    spikes: dict[str, list] = {n: [] for n in names}
    hooks = [m.register_forward_hook(lambda _m, _i, out, n=n: spikes[n].append(out))
             for n, m in module.named_modules() if n in names]
    with torch.no_grad():
        logits = torch.stack([module(x.double()) for _ in range(graph.timesteps)]).mean(0)
    for hook in hooks:
        hook.remove()
    return logits, {n: torch.stack(s) for n, s in spikes.items()}


def test_ottt_vgg_with_weight_standardization_traces() -> None:
    """OTTTLIFNode is a soft-reset LIF without input decay in eval; Scale is a constant product."""
    model = _built(ottt.ottt_spiking_vggws(num_classes=10), multi_step=False)
    graph = trace_model(model, (3, 32, 32), 2)
    lif = graph["features.1"].attrs
    assert (lif.v_reset, lif.decay_input, lif.tau) == (None, False, 2.0)
    assert graph["features.2.mul"].op is Op.SCALE
    x = torch.rand(2, 3, 32, 32) * 4
    logits, spikes = _single_step_run(model, graph, x)
    ref = run_graph(graph, x, record=True, dtype=torch.float64)
    assert all(torch.equal(spikes[n], ref.spikes[n]) for n in spikes)
    assert (logits - ref.logits).abs().max() <= TOLERANCES.trace


def test_masnn_is_refused_naming_its_time_mixing_module() -> None:
    with pytest.raises(UnsupportedError) as info:
        trace_model(_built(masnn.masnn_dvs128_gesture(T=5), multi_step=False), (2, 32, 32), 5)
    message = info.value.message
    assert message.startswith("'conv_blocks.0.attn' (MultiDimensionalAttention) mixes time steps")
    assert "\n" not in message


def test_spikformer_is_refused_in_one_line_naming_a_module() -> None:
    model = _built(spikformer.spikformer_ti(T=2, img_size_h=32, img_size_w=32, num_classes=10), multi_step=False)
    with pytest.raises(UnsupportedError) as info:
        trace_model(model, (3, 32, 32), 2)
    assert info.value.message.startswith("the model cannot be converted: 'blocks.0' (SpikformerBlock): 'flatten'")
    assert "\n" not in info.value.message
