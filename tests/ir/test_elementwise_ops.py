"""mul, complement and scale: shape rules, and reference rules that compute what spikingjelly's models write."""

from __future__ import annotations

import pytest
import torch
from graphs import GraphBuilder

from scadeploy.backends.torch_ref import run_graph
from scadeploy.errors import GraphError
from scadeploy.ir.graph import ComplementAttrs, Conv2dAttrs, MulAttrs, NeuronAttrs, Op, ScaleAttrs
from scadeploy.ir.ops import OPS, infer_shape


def test_mul_takes_exactly_two_inputs_of_one_shape() -> None:
    assert infer_shape(Op.MUL, MulAttrs(), [(2, 4, 4), (2, 4, 4)]) == (2, 4, 4)
    for shapes in ([(2, 4, 4)], [(2, 4, 4)] * 3, [(2, 4, 4), (3, 4, 4)]):
        with pytest.raises(GraphError, match="mul expects two inputs of one shape"):
            infer_shape(Op.MUL, MulAttrs(), shapes)


@pytest.mark.parametrize("op", [Op.MUL, Op.COMPLEMENT, Op.SCALE])
def test_element_wise_ops_are_channel_wise_and_take_no_parameters(op: Op) -> None:
    assert OPS[op].channel_wise and not OPS[op].producer
    assert OPS[op].params(OPS[op].attrs()) == {}


EXPRESSIONS = {  # node -> (op, attrs, inputs), built on two spike maps a and b
    "and": (Op.MUL, MulAttrs(), ("a", "b")),
    "not_b": (Op.COMPLEMENT, ComplementAttrs(), ("b",)),
    "scaled": (Op.SCALE, ScaleAttrs(2.74), ("a",)),
}


def _spiking_graph(last: str, timesteps: int = 3):
    """input -> conv -> IF (a) and conv -> IF (b), then the expression `last` (and, for iand, not_b first)."""
    g = torch.Generator().manual_seed(0)
    b = GraphBuilder((2, 4, 4))
    for name in ("a", "b"):
        b.add(f"conv_{name}", Op.CONV2D, Conv2dAttrs(2, 2, (1, 1)), {"weight": torch.randn(2, 2, 1, 1, generator=g)},
              inputs=("input",))
        b.add(name, Op.NEURON, NeuronAttrs(v_threshold=0.5))
    if last == "iand":
        b.add("not_b", *EXPRESSIONS["not_b"][:2], inputs=("b",))
        b.add("iand", Op.MUL, MulAttrs(), inputs=("a", "not_b"))
    else:
        op, attrs, inputs = EXPRESSIONS[last]
        b.add(last, op, attrs, inputs=inputs)
    return b.graph(timesteps)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", ["and", "not_b", "iand", "scaled"])
def test_reference_rules_match_the_expressions_of_sew_and_ottt(dtype: torch.dtype, name: str) -> None:
    """sew_function: x * y, x * (1.0 - y); OTTT's Scale: x * 2.74 (bit for bit, in the run's dtype)."""
    graph = _spiking_graph(name)
    x = torch.rand(5, 2, 4, 4) * 3
    spikes = run_graph(graph, x, record=True, dtype=dtype).spikes
    a, s = spikes["a"], spikes["b"]
    expected = {"and": a * s, "not_b": 1.0 - s, "iand": a * (1.0 - s), "scaled": a * 2.74}[name]
    assert a.sum() > 0 and s.sum() > 0 and (a * s).sum() > 0 and (a * (1 - s)).sum() > 0
    assert torch.equal(_per_step_output(graph, x, dtype), expected)


def _per_step_output(graph, x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """The output node's input at every step (the executors average a time-major output; read it before)."""
    seen = {}
    run_graph(graph, x, dtype=dtype, observe=lambda node, args: seen.setdefault(node.name, args))
    return seen["output"][0].tensor


def test_a_static_frame_times_spikes_broadcasts_over_time() -> None:
    """A direct-encoded frame (one [N, ...] value for every step) times spikes [T, N, ...]."""
    b = GraphBuilder((2, 4, 4))
    b.add("conv", Op.CONV2D, Conv2dAttrs(2, 2, (1, 1)), {"weight": torch.eye(2).reshape(2, 2, 1, 1)})
    b.add("sn", Op.NEURON, NeuronAttrs(v_threshold=0.7))
    b.add("gated", Op.MUL, MulAttrs(), inputs=("input", "sn"))
    b.add("inverse", Op.COMPLEMENT, ComplementAttrs(), inputs=("input",))
    b.add("both", Op.MUL, MulAttrs(), inputs=("gated", "inverse"))
    graph = b.graph(timesteps=3)
    x = torch.rand(4, 2, 4, 4)
    s = run_graph(graph, x, record=True).spikes["sn"]
    assert torch.equal(_per_step_output(graph, x, torch.float32), (x * s) * (1.0 - x))
