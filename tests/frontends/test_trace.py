"""The fx frontend reproduces spikingjelly eager exactly, and names what it cannot convert."""

from __future__ import annotations

import pytest
import torch
from spikingjelly.activation_based import functional, layer
from support import INPUT_SHAPES, masked_model
from torch import nn

from scadeploy.backends.torch_ref import run_graph
from scadeploy.errors import UnsupportedError
from scadeploy.frontends.trace import trace_model
from scadeploy.ir.graph import Op
from scadeploy.models import MeanOverTime, encode_direct, make_neuron


@pytest.mark.parametrize("name", ["digits", "vgg16", "vgg_mnist", "resnet18"])
@pytest.mark.parametrize("neuron", ["if", "lif"])
def test_trace_matches_spikingjelly_eager(name: str, neuron: str) -> None:
    model, _ = masked_model(name, 0.5, neuron)
    x = torch.rand(2, *INPUT_SHAPES[name]) * 2
    functional.reset_net(model)
    with torch.no_grad():
        eager = model(encode_direct(x, 4))
    graph = trace_model(model, INPUT_SHAPES[name], timesteps=4)
    assert torch.equal(run_graph(graph, x).logits, eager)


def test_resnet_trace_has_residual_adds() -> None:
    model, _ = masked_model("resnet18", 1.0, input_size=8, stage_widths=(4, 4, 4, 4))
    graph = trace_model(model, (3, 8, 8), 4)
    assert len(graph.of_op(Op.ADD)) == 8
    assert all(len(n.inputs) == 2 for n in graph.of_op(Op.ADD))


def test_unsupported_layer_is_named_with_its_place() -> None:
    model = nn.Sequential(layer.Conv2d(1, 4, 3, padding=1, step_mode="m"), nn.GELU(), make_neuron(), MeanOverTime())
    with pytest.raises(UnsupportedError) as info:
        trace_model(model, (1, 8, 8), 4)
    assert "GELU" in info.value.message and "at '1'" in info.value.message


def test_unsupported_function_is_named() -> None:
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = layer.Conv2d(1, 2, 3, step_mode="m")

        def forward(self, x):
            return torch.sigmoid(self.conv(x))

    with pytest.raises(UnsupportedError, match="function 'sigmoid'"):
        trace_model(Net(), (1, 8, 8), 4)


def test_layers_called_with_keywords_trace() -> None:
    """spikingjelly layers accept `self.fc(input=x)`; the tracer follows keyword inputs too."""

    class KeywordNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = layer.Conv2d(1, 4, 3, padding=1, step_mode="m")
            self.sn = make_neuron("if")
            self.flat = layer.Flatten(step_mode="m")
            self.fc = layer.Linear(4 * 8 * 8, 3, step_mode="m")

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(input=self.flat(self.sn(self.conv(x=x))))

    model = KeywordNet().eval()
    graph = trace_model(model, (1, 8, 8), timesteps=2)
    assert [n.op for n in graph.nodes] == [Op.INPUT, Op.CONV2D, Op.NEURON, Op.FLATTEN, Op.LINEAR, Op.OUTPUT]
    x = torch.rand(3, 1, 8, 8) * 3
    functional.reset_net(model)
    with torch.no_grad():
        eager = model(encode_direct(x, 2)).mean(0)
    assert torch.allclose(run_graph(graph, x).logits, eager, atol=1e-6)
