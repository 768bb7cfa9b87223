"""The fx frontend reproduces spikingjelly eager exactly, and names what it cannot convert."""

from __future__ import annotations

import pytest
import torch
from spikingjelly.activation_based import functional, layer, neuron
from support import INPUT_SHAPES, masked_model
from torch import nn

from scadeploy.backends.torch_ref import run_graph
from scadeploy.errors import UnsupportedError
from scadeploy.frontends.trace import trace_model
from scadeploy.ir.graph import Op
from scadeploy.models import MeanOverTime, encode_direct, make_neuron
from scadeploy.parity import compare_traced


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
    assert "'1' (GELU): not a supported layer" in info.value.message


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


def _seeded(model: nn.Module) -> nn.Module:
    torch.manual_seed(0)
    for p in model.parameters():
        p.data.normal_(0.0, 0.5)
    return model.eval()


def _agrees_exactly(model: nn.Module, shape: tuple[int, ...], timesteps: int = 4, neurons: int | None = None):
    """The graph and the trace check on random frames: every spike equal, logits equal in float64."""
    graph = trace_model(model, shape, timesteps)
    fidelity = compare_traced(model, graph, torch.rand(2, *shape) * 3)
    assert fidelity.neuron_layers_compared == (len(graph.of_op(Op.NEURON)) if neurons is None else neurons)
    assert fidelity.spike_mismatches == 0 and fidelity.max_logit_diff == 0.0, fidelity
    return graph


def test_function_nodes_are_named_after_their_module() -> None:
    model, _ = masked_model("resnet18", 1.0, input_size=8, stage_widths=(4, 4, 4, 4))
    graph = trace_model(model, (3, 8, 8), 4)
    adds = [n.name for n in graph.of_op(Op.ADD)]
    assert adds[:2] == ["layer1.0.add", "layer1.1.add"] and len(set(adds)) == 8


def test_unsupported_function_names_the_module_it_is_called_in() -> None:
    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = layer.Conv2d(1, 2, 3)

        def forward(self, x):
            return torch.sigmoid(self.conv(x))

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.block = Block()
            self.sn = neuron.IFNode()

        def forward(self, x):
            return self.sn(self.block(x)).flatten(1)

    with pytest.raises(UnsupportedError) as info:
        trace_model(Net(), (1, 8, 8), 4)
    assert "'block' (Block): function 'sigmoid' is not supported (called as sigmoid('block.conv'))" in \
        info.value.message
    assert "block_conv" not in info.value.message  # no torch.fx node names


def test_data_dependent_control_flow_is_refused_with_its_module_and_line() -> None:
    class Gate(nn.Module):
        def forward(self, y):
            if y.sum() > 0:
                y = y + y
            return y

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = layer.Conv2d(1, 2, 3)
            self.gate = Gate()
            self.sn = neuron.IFNode()

        def forward(self, x):
            return self.sn(self.gate(self.conv(x))).flatten(1)

    with pytest.raises(UnsupportedError, match=r"^torch.fx cannot trace the model: 'gate' \(Gate\): .* control flow "
                                               r"\(at test_trace.py:\d+ in forward\)"):
        trace_model(Net(), (1, 8, 8), 4)


class _Views(nn.Module):
    """Reshapes that keep the layout, written so they also run on sequences (the trace check runs 'm')."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = layer.Conv2d(1, 4, 3, padding=1)
        self.sn = neuron.IFNode()
        self.fc = layer.Linear(4 * 8 * 8, 3)

    def forward(self, x):
        x = self.sn(self.conv(x)).unsqueeze(-3).squeeze(-3).contiguous()
        if x.ndim == 4:  # shape control flow: the trace knows the rank
            x = x.view(x.size(0), -1)
        else:
            x = x.reshape(*x.shape[:2], -1)
        return self.fc(x)


def test_view_reshape_squeeze_that_keep_the_layout_trace() -> None:
    graph = _agrees_exactly(_seeded(_Views()), (1, 8, 8))
    assert [n.op for n in graph.nodes] == [Op.INPUT, Op.CONV2D, Op.NEURON, Op.FLATTEN, Op.LINEAR, Op.OUTPUT]


def test_a_reshape_that_changes_the_layout_is_refused() -> None:
    class Tokens(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = layer.Conv2d(1, 4, 3, padding=1)

        def forward(self, x):
            return self.conv(x).flatten(-2)

    with pytest.raises(UnsupportedError, match=r"'flatten' reshapes each sample from \(4, 8, 8\) to \(4, 64\)"):
        trace_model(Tokens(), (1, 8, 8), 4)


class _MultiStepNet(nn.Module):
    """Written for sequences: sequence containers, `x.flatten(2)` and `x.mean(0)`."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = layer.SeqToANNContainer(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4))
        self.sn = neuron.LIFNode(step_mode="m")
        self.pool = layer.SeqToANNContainer(nn.MaxPool2d(2))
        self.block = layer.MultiStepContainer(nn.Conv2d(4, 4, 3, padding=1), neuron.IFNode())
        self.fc = layer.Linear(4 * 4 * 4, 3, step_mode="m")

    def forward(self, x):
        return self.fc(self.block(self.pool(self.sn(self.stem(x)))).flatten(2)).mean(0)


def test_a_multi_step_model_traces_in_multi_step_mode() -> None:
    graph = _agrees_exactly(_seeded(_MultiStepNet()), (1, 8, 8))  # a per-step neuron too: its calls are stacked
    assert [(n.name, n.op) for n in graph.nodes[-4:]] == [
        ("flatten", Op.FLATTEN), ("fc", Op.LINEAR), ("mean", Op.MEAN_OVER_TIME), ("output", Op.OUTPUT)]
    assert [n.name for n in graph.of_op(Op.NEURON)] == ["sn", "block.1"]


def test_a_plain_layer_on_a_sequence_is_refused_by_name() -> None:
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = layer.Conv2d(1, 4, 3, padding=1, step_mode="m")
            self.sn = neuron.IFNode(step_mode="m")
            self.bn = nn.BatchNorm1d(4 * 8 * 8)

        def forward(self, x):
            return self.bn(self.sn(self.conv(x)).flatten(2)).mean(0)

    with pytest.raises(UnsupportedError, match=r"'bn' \(BatchNorm1d\): a single-step layer is applied to a "
                                               r"\[T, N, \.\.\.\] sequence"):
        trace_model(Net().eval(), (1, 8, 8), 4)
