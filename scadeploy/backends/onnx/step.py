"""The streaming ONNX layout: one time step, with every piece of state as an explicit input and output.

Inputs: the frame of this step `input [N, *shape]` (for direct encoding the same frame at every
step) and one state tensor per neuron (`<neuron>.v`) and per time average (`<node>.sum`, the
running sum of its input). Outputs: `logits` and the new state (`<neuron>.v_next`, `<node>.sum_next`).
Run it T times from `initial_states`; the logits after step T equal the sequence layout's
(the time average is taken as sum / T, so earlier steps give the partial sum scaled by 1/T).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx

from scadeploy.backends.onnx.ops import (
    COMBINING_OPS,
    STATELESS_OPS,
    OnnxBuilder,
    combine,
    initial_v,
    neuron_step,
    spikes,
    stateless,
    tensor_info,
)
from scadeploy.ir.graph import Graph, Node, Op

BATCH = "N"
LOGITS = "logits"


@dataclass(frozen=True)
class StateSpec:
    """One state tensor: fed as `input_name`, returned as `output_name`, starts filled with `initial`."""

    input_name: str
    output_name: str
    shape: tuple[int, ...]  # per sample
    initial: float

    def initial_value(self, batch: int) -> np.ndarray:
        return np.full((batch, *self.shape), self.initial, dtype=np.float32)


def state_specs(graph: Graph) -> list[StateSpec]:
    """The step layout's states, in input order."""
    specs = []
    for node in graph.nodes:
        if node.op is Op.NEURON:
            specs.append(StateSpec(f"{node.name}.v", f"{node.name}.v_next", node.shape, initial_v(node.attrs)))
        elif node.op in (Op.MEAN_OVER_TIME, Op.OUTPUT) and _timed(graph, node.inputs[0]):
            specs.append(StateSpec(f"{node.name}.sum", f"{node.name}.sum_next", graph[node.inputs[0]].shape, 0.0))
    return specs


def _timed(graph: Graph, name: str) -> bool:
    """True when the value changes from step to step (it depends on a neuron before any time mean)."""
    node = graph[name]
    if node.op is Op.NEURON:
        return True
    if node.op in (Op.INPUT, Op.MEAN_OVER_TIME):
        return False
    return any(_timed(graph, i) for i in node.inputs)


def _running_mean(b: OnnxBuilder, node: Node, x: str, timesteps: int) -> str:
    total = b.op("Add", [f"{node.name}.sum", x], f"{node.name}.sum_next")
    return b.op("Div", [total, b.const(f"{node.name}.timesteps", float(timesteps))], f"{node.name}.mean")


def build_step_model(graph: Graph, opset: int) -> onnx.ModelProto:
    """One-step ONNX model: (input, *states) -> (logits, *new states)."""
    b = OnnxBuilder(opset)
    inp = graph.input
    t = graph.timesteps
    specs = state_specs(graph)
    values = {inp.name: inp.name}
    for node in graph.nodes[1:]:
        args = [values[i] for i in node.inputs]
        if node.op in STATELESS_OPS:
            values[node.name] = stateless(b, node, args[0])
        elif node.op is Op.NEURON:
            silent, _ = neuron_step(b, node.name, node.attrs, args[0], f"{node.name}.v", f"{node.name}.step",
                                    v_name=f"{node.name}.v_next")
            values[node.name] = spikes(b, silent, node.name)
        elif node.op in COMBINING_OPS:
            values[node.name] = combine(b, node, args)
        elif node.op in (Op.MEAN_OVER_TIME, Op.OUTPUT):
            timed = _timed(graph, node.inputs[0])
            mean = _running_mean(b, node, args[0], t) if timed else args[0]
            name = LOGITS if node.op is Op.OUTPUT else node.name
            values[node.name] = b.op("Identity", [mean], name)
    inputs = [tensor_info(inp.name, [BATCH, *inp.shape])]
    inputs += [tensor_info(s.input_name, [BATCH, *s.shape]) for s in specs]
    outputs = [tensor_info(LOGITS, [BATCH, *graph.output.shape])]
    outputs += [tensor_info(s.output_name, [BATCH, *s.shape]) for s in specs]
    doc = f"scadeploy step layout: one of T={t} steps, neuron state as explicit inputs and outputs"
    return b.model("scadeploy_step", inputs, outputs, doc)
