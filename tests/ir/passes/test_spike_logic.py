"""spike_logic: products and complements of spikes as memoryless threshold neurons, spike for spike."""

from __future__ import annotations

import pytest
import torch
from graphs import GraphBuilder

from scadeploy.backends.torch_ref import run_graph
from scadeploy.ir.graph import (
    ComplementAttrs,
    Conv2dAttrs,
    Encoding,
    FlattenAttrs,
    LinearAttrs,
    MulAttrs,
    NeuronAttrs,
    Op,
)
from scadeploy.ir.neuron import is_memoryless, memoryless, run_neuron
from scadeploy.ir.passes.spike_logic import is_binary, logic_problems, spike_logic

T = 6


def test_memoryless_neuron_fires_on_this_step_only() -> None:
    """h = x exactly: after any history of sub- or supra-threshold input, it fires iff x >= threshold."""
    x = torch.tensor([1.0, 1.0, 2.0, -1.0, 2.0, 0.0, 1.0, 3.0])[:, None]
    assert run_neuron(memoryless(2.0), x).flatten().tolist() == [0, 0, 1, 0, 1, 0, 0, 1]
    assert is_memoryless(memoryless(1.0)) and not is_memoryless(NeuronAttrs())


def _logic_graph(expression: str, features: bool = False):
    """Two random spike sequences a, b (sequence input, 0/1), optionally flattened to features, then one
    expression of them read by the output."""
    b = GraphBuilder((2, 3, 3), Encoding.SEQUENCE)
    for name, weight in (("a", torch.eye(2)), ("b", torch.eye(2).flip(0))):  # b swaps the input's channels
        b.add(f"{name}.w", Op.CONV2D, Conv2dAttrs(2, 2, (1, 1)), {"weight": weight.reshape(2, 2, 1, 1)},
              inputs=("input",))
        b.add(name, Op.NEURON, NeuronAttrs(v_threshold=1.0))  # fires iff the input event is 1 (v resets to 0)
        if features:
            b.add(f"{name}.flat", Op.FLATTEN, FlattenAttrs())
    a, s = ("a.flat", "b.flat") if features else ("a", "b")
    if expression == "and":
        b.add("out", Op.MUL, MulAttrs(), inputs=(a, s))
    elif expression == "iand":
        b.add("not_b", Op.COMPLEMENT, ComplementAttrs(), inputs=(s,))
        b.add("out", Op.MUL, MulAttrs(), inputs=(a, "not_b"))
    elif expression == "nor":
        b.add("not_a", Op.COMPLEMENT, ComplementAttrs(), inputs=(a,))
        b.add("not_b", Op.COMPLEMENT, ComplementAttrs(), inputs=(s,))
        b.add("out", Op.MUL, MulAttrs(), inputs=("not_a", "not_b"))
    elif expression == "not":
        b.add("out", Op.COMPLEMENT, ComplementAttrs(), inputs=(s,))
    elif expression == "and_of_and":
        b.add("ab", Op.MUL, MulAttrs(), inputs=(a, s))
        b.add("out", Op.MUL, MulAttrs(), inputs=("ab", a))
    return b.graph(T)


def _events(samples: int = 64, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 2, (T, samples, 2, 3, 3), generator=torch.Generator().manual_seed(seed)).float()


def _values(graph, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Every node's output value, per step."""
    seen = {}
    run_graph(graph, x, dtype=torch.float64, observe=lambda node, args: seen.update(
        {name: v.tensor for name, v in zip(node.inputs, args, strict=True)}))
    return seen


@pytest.mark.parametrize("expression", ["and", "iand", "nor", "not", "and_of_and"])
@pytest.mark.parametrize("grouped", [True, False])
@pytest.mark.parametrize("features", [False, True])
def test_logic_neurons_reproduce_every_value(expression: str, grouped: bool, features: bool) -> None:
    graph = _logic_graph(expression, features)
    rewritten = spike_logic(graph, grouped)
    assert not rewritten.of_op(Op.MUL, Op.COMPLEMENT)
    assert rewritten["out"].op is Op.NEURON and is_memoryless(rewritten["out"].attrs)
    x = _events()
    before, after = _values(graph, x), _values(rewritten, x)
    assert torch.equal(before["out"], after["out"])
    assert 0 < int(before["out"].sum()) < before["out"].numel()  # both values occur
    for name in set(before) & set(after):
        assert torch.equal(before[name], after[name]), name


def test_iand_is_one_neuron_with_weights_plus_and_minus_one_and_threshold_one() -> None:
    rewritten = spike_logic(_logic_graph("iand"), grouped=True)
    out = rewritten["out"]
    assert out.attrs.v_threshold == 1.0 and "not_b" not in rewritten  # the complement is fused
    plus, minus = rewritten["out.in0"], rewritten["out.in1"]
    assert plus.inputs == ("a",) and minus.inputs == ("b",)
    assert plus.params["weight"].unique().tolist() == [1.0] and minus.params["weight"].unique().tolist() == [-1.0]
    assert plus.attrs.groups == 2 and "bias" not in plus.params
    assert rewritten["out"].inputs == ("out.sum",) and rewritten["out.sum"].inputs == ("out.in0", "out.in1")


def test_and_has_threshold_two_and_not_has_a_bias() -> None:
    assert spike_logic(_logic_graph("and"), grouped=True)["out"].attrs.v_threshold == 2.0
    rewritten = spike_logic(_logic_graph("not"), grouped=False)
    synapse = rewritten["out.in0"]
    assert rewritten["out"].inputs == ("out.in0",) and rewritten["out"].attrs.v_threshold == 1.0
    assert synapse.attrs.groups == 1 and synapse.params["bias"].tolist() == [1.0, 1.0]
    assert torch.equal(synapse.params["weight"].flatten(1), -torch.eye(2))


def test_feature_literals_use_identity_linears() -> None:
    rewritten = spike_logic(_logic_graph("iand", features=True), grouped=True)
    assert rewritten["out.in1"].op is Op.LINEAR and rewritten["out.in1"].attrs == LinearAttrs(18, 18)


def test_a_graph_without_logic_is_unchanged() -> None:
    b = GraphBuilder((2, 3, 3))
    b.add("w", Op.CONV2D, Conv2dAttrs(2, 2, (1, 1)), {"weight": torch.ones(2, 2, 1, 1)})
    b.add("sn", Op.NEURON, NeuronAttrs())
    graph = b.graph(T)
    assert spike_logic(graph, grouped=True) is graph


def test_products_of_analog_values_are_named() -> None:
    b = GraphBuilder((2, 3, 3))
    b.add("w", Op.CONV2D, Conv2dAttrs(2, 2, (1, 1)), {"weight": torch.ones(2, 2, 1, 1)})
    b.add("sn", Op.NEURON, NeuronAttrs())
    b.add("gate", Op.MUL, MulAttrs(), inputs=("w", "sn"))
    b.add("inverse", Op.COMPLEMENT, ComplementAttrs(), inputs=("input",))
    graph = b.graph(T)
    assert not is_binary(graph, "gate") and is_binary(graph, "sn")
    problems = logic_problems(graph)
    assert len(problems) == 2
    assert problems[0].startswith("mul 'gate' reads 'w', which is not binary spikes")
    assert problems[1].startswith("complement 'inverse' reads 'input'")
