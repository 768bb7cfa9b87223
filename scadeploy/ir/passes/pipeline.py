"""Passes run in order, each result verified: a pass that breaks the IR is named, not found three passes later.

A pipeline is a tuple of `Pass(name, run)`; each backend declares its own (`PASSES` beside its
lowering) and `run_passes` applies it, as torch.fx's PassManager does for fx graphs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from scadeploy.errors import GraphError
from scadeploy.ir.graph import Graph
from scadeploy.ir.verify import verify


@dataclass(frozen=True)
class Pass:
    name: str
    run: Callable[[Graph], Graph]


def run_passes(graph: Graph, passes: Sequence[Pass]) -> Graph:
    """`graph` through every pass in order, verified after each; a GraphError names the pass that broke it."""
    for p in passes:
        try:
            graph = verify(p.run(graph))
        except GraphError as exc:
            raise GraphError(f"pass '{p.name}' left a broken graph: {exc.message}", exc.hint) from exc
    return graph
