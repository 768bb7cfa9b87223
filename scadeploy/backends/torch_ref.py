"""The torch reference executor: an interpreter over the IR, the oracle for every other backend.

Each node runs its op's reference rule (`ir/reference.py`), on `[T, N, ...]` values or one static
frame (see `Value`). Runs in any float dtype; float64 removes summation-order ties when two graphs
that should agree are compared.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from scadeploy.ir.graph import Encoding, Graph, Node, Op
from scadeploy.ir.ops import OPS
from scadeploy.ir.reference import Value


@dataclass
class RunResult:
    """Logits `[N, classes]` and, when recorded, each neuron's spikes `[T, N, ...]`."""

    logits: torch.Tensor
    spikes: dict[str, torch.Tensor] = field(default_factory=dict)


def apply_node(node: Node, args: list[Value], timesteps: int, params: dict[str, torch.Tensor]) -> Value:
    """The op's reference rule (`ir/reference.py`, named by the registry in `ir/ops.py`)."""
    return OPS[node.op].reference(node, args, timesteps, params)


def sample_count(graph: Graph, x: torch.Tensor) -> int:
    """Samples in `x`: frames `[N, ...]` for direct encoding, `[T, N, ...]` for a sequence."""
    return int(x.shape[0] if graph.input.attrs.encoding is Encoding.DIRECT else x.shape[1])


Observer = Callable[[Node, list[Value]], None]


def run_graph(
    graph: Graph, x: torch.Tensor, *, record: bool = False, dtype: torch.dtype = torch.float32,
    observe: Observer | None = None,
) -> RunResult:
    """Run the graph on `x` (`[N, ...]` for direct encoding, `[T, N, ...]` for a sequence).

    `observe(node, input_values)` is called before each node runs, e.g. to count synaptic operations.
    """
    inp = graph.input
    static = inp.attrs.encoding is Encoding.DIRECT
    values: dict[str, Value] = {inp.name: Value(x.to(dtype), static)}
    spikes: dict[str, torch.Tensor] = {}
    last_use = {name: i for i, n in enumerate(graph.nodes) for name in n.inputs}
    with torch.no_grad():
        for i, node in enumerate(graph.nodes[1:], start=1):
            args = [values[n] for n in node.inputs]
            if observe is not None:
                observe(node, args)
            params = {k: p.to(dtype=dtype, device=x.device) for k, p in node.params.items()}
            values[node.name] = apply_node(node, args, graph.timesteps, params)
            if record and node.op is Op.NEURON:
                spikes[node.name] = values[node.name].tensor
            for name in node.inputs:
                if last_use[name] == i:
                    del values[name]
    return RunResult(values[graph.output.name].tensor, spikes)

