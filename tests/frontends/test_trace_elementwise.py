"""The tracer turns SEW ResNet's spike-element-wise functions and OTTT's Scale into mul, complement and scale,
keeping the operand order, and the traced graph computes what the model computes."""

from __future__ import annotations

import pytest
import torch
from sew_support import CONNECTIONS, frames, narrow_sew_resnet
from spikingjelly.activation_based import functional, layer, neuron
from spikingjelly.activation_based.model import sew_resnet
from spikingjelly.activation_based.model.spiking_vggws_ottt import Scale
from torch import nn

from scadeploy.backends.torch_ref import run_graph
from scadeploy.errors import UnsupportedError
from scadeploy.frontends.trace import trace_model
from scadeploy.ir.graph import Op
from scadeploy.models import encode_direct
from scadeploy.parity import compare_traced


def _eager(model: nn.Module, x: torch.Tensor, timesteps: int) -> torch.Tensor:
    functional.set_step_mode(model, "m")
    functional.reset_net(model)
    with torch.no_grad():
        out = model(encode_direct(x, timesteps))
    return out.mean(0) if out.dim() == 3 else out


@pytest.mark.parametrize("cnf", CONNECTIONS)
def test_sew_connection_traces_exactly(cnf: str) -> None:
    model = narrow_sew_resnet(cnf)
    x = frames((3, 16, 16), 3)
    graph = trace_model(model, (3, 16, 16), timesteps=3)
    fidelity = compare_traced(model, graph, x)
    assert fidelity.passed and fidelity.spike_mismatches == 0 and fidelity.spikes_compared > 0
    assert torch.equal(run_graph(graph, x).logits, _eager(model, x, 3))
    ops = {Op.ADD: len(graph.of_op(Op.ADD)), Op.MUL: len(graph.of_op(Op.MUL)),
           Op.COMPLEMENT: len(graph.of_op(Op.COMPLEMENT))}
    blocks = 6
    assert ops == {"ADD": {Op.ADD: blocks, Op.MUL: 0, Op.COMPLEMENT: 0},
                   "AND": {Op.ADD: 0, Op.MUL: blocks, Op.COMPLEMENT: 0},
                   "IAND": {Op.ADD: 0, Op.MUL: blocks, Op.COMPLEMENT: blocks}}[cnf]


def test_basic_block_iand_negates_the_residual_branch() -> None:
    """BasicBlock: identity * (1 - out); the complement reads sn2, the product reads the block input first."""
    graph = trace_model(narrow_sew_resnet("IAND"), (3, 16, 16), timesteps=2)
    first = graph.of_op(Op.MUL)[0]
    identity, negated = (graph[i] for i in first.inputs)
    assert identity.name == "maxpool" and negated.op is Op.COMPLEMENT
    assert graph[negated.inputs[0]].name == "layer1.0.sn2"


def test_bottleneck_iand_negates_the_identity() -> None:
    """Bottleneck: out * (1 - identity): the complement reads the block input."""
    torch.manual_seed(0)
    model = sew_resnet.SEWResNet(sew_resnet.Bottleneck, [1, 1, 1, 1], num_classes=10, cnf="IAND",
                                 spiking_neuron=neuron.IFNode).eval()
    graph = trace_model(model, (3, 16, 16), timesteps=2)
    first = graph.of_op(Op.MUL)[0]
    out, negated = (graph[i] for i in first.inputs)
    assert out.name == "layer1.0.sn3" and negated.op is Op.COMPLEMENT
    assert graph[negated.inputs[0]].name == "layer1.0.downsample_sn"


class _Scaled(nn.Module):
    """conv -> IF -> Scale(2.74) (OTTT's module) -> conv -> IF; the second scale written constant-first."""

    def __init__(self, constant_first: bool = False) -> None:
        super().__init__()
        self.conv1 = layer.Conv2d(1, 4, 3, padding=1)
        self.sn1 = neuron.IFNode()
        self.scale = Scale(2.74)
        self.conv2 = layer.Conv2d(4, 4, 3, padding=1)
        self.sn2 = neuron.IFNode()
        self.constant_first = constant_first

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.scale(self.sn1(self.conv1(x)))
        x = 0.5 * x if self.constant_first else x
        return self.sn2(self.conv2(x))


@pytest.mark.parametrize("constant_first", [False, True])
def test_ottt_scale_traces_as_a_scale(constant_first: bool) -> None:
    torch.manual_seed(0)
    model = _Scaled(constant_first).eval()
    graph = trace_model(model, (1, 8, 8), timesteps=3)
    factors = [n.attrs.factor for n in graph.of_op(Op.SCALE)]
    assert factors == ([2.74, 0.5] if constant_first else [2.74])
    x = torch.rand(4, 1, 8, 8) * 3
    assert compare_traced(model, graph, x).passed


class _Complements(nn.Module):
    """1 - x written three ways."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = layer.Conv2d(1, 2, 1)
        self.sn = neuron.IFNode()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.sn(self.conv(x))
        return (1 - s) + (1.0 - s) + torch.rsub(s, 1.0)


def test_every_spelling_of_one_minus_x_is_a_complement() -> None:
    graph = trace_model(_Complements().eval(), (1, 4, 4), timesteps=2)
    assert len(graph.of_op(Op.COMPLEMENT)) == 3


class _Difference(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = layer.Conv2d(1, 2, 1)
        self.sn = neuron.IFNode()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.sn(self.conv(x))
        return 2.0 - s


def test_other_differences_are_refused_by_name() -> None:
    with pytest.raises(UnsupportedError, match="sub"):
        trace_model(_Difference().eval(), (1, 4, 4), timesteps=2)
