"""deployable: the graph every backend consumes, from a verified (stripped) graph.

Batch norms fold into the conv/linear before them (`fold_batchnorm`), then adaptive average pools
fold into the linear layers after them (`fold_adaptive_pool`), then constant scales fold into the
conv/linear layers that read them (`fold_scale`); all are exact in exact arithmetic.
Last, every parameter is rounded to float32, the arithmetic of the runtimes (a weight the frontend
derived from the model's parameters, such as a standardized weight, may be kept in float64 until here).
Compile, benchmark and the studies all call this one function, so every backend sees the same graph.
"""

from __future__ import annotations

import torch

from scadeploy.ir.graph import Graph
from scadeploy.ir.passes.fold_adaptive_pool import fold_adaptive_pool
from scadeploy.ir.passes.fold_batchnorm import fold_batchnorm
from scadeploy.ir.passes.fold_scale import fold_scale
from scadeploy.ir.passes.pipeline import Pass, run_passes


def deployable(graph: Graph) -> Graph:
    return run_passes(graph, DEPLOY_PASSES)


def float32_params(graph: Graph) -> Graph:
    """The graph with every parameter as float32 (unchanged where it already is)."""
    if all(p.dtype == torch.float32 for n in graph for p in n.params.values()):
        return graph
    return graph.with_nodes([n.with_(params={k: p.to(torch.float32) for k, p in n.params.items()})
                             for n in graph])


DEPLOY_PASSES = (Pass("fold_batchnorm", fold_batchnorm), Pass("fold_adaptive_pool", fold_adaptive_pool),
                 Pass("fold_scale", fold_scale), Pass("float32_params", float32_params))
