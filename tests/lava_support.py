"""Small networks shared by the Lava backend tests: digits, a VGG-style net with max pooling, a ResNet."""

from __future__ import annotations

import torch
from support import masked_model

from scadeploy.backends.lava.export import lower_graph
from scadeploy.backends.lava.net import FixedNet
from scadeploy.frontends.trace import trace_model
from scadeploy.ir.graph import Graph
from scadeploy.ir.passes.fold_batchnorm import fold_batchnorm
from scadeploy.ir.passes.strip_channels import strip_channels
from scadeploy.targets.backend_options import LavaOptions

CASES = {
    "digits": ("digits", {}, (1, 8, 8)),
    "vgg": ("vgg16", {"config": (8, "M", 16, "M"), "input_size": 8, "hidden": 16}, (3, 8, 8)),
    "resnet": ("resnet18", {"input_size": 8, "stage_widths": (4, 8, 8, 8)}, (3, 8, 8)),
}


def folded_graph(case: str, keep: float = 0.5, neuron: str = "if", timesteps: int = 4, seed: int = 0,
                 **overrides) -> Graph:
    """A masked reference model, traced, stripped and BN-folded: what the backend receives."""
    name, kwargs, shape = CASES[case]
    kwargs = kwargs | overrides
    if "input_size" in kwargs:
        shape = (shape[0], kwargs["input_size"], kwargs["input_size"])
    model, masks = masked_model(name, keep, neuron, seed, **kwargs)
    stripped, _ = strip_channels(trace_model(model, shape, timesteps), masks)
    return fold_batchnorm(stripped)


def lowered(case: str, **kwargs) -> tuple[FixedNet, Graph, Graph]:
    """(fixed-point net, quantized IR graph, float graph)."""
    graph = folded_graph(case, **kwargs)
    net, _, qgraph = lower_graph(graph, LavaOptions())
    return net, qgraph, graph


def frames(shape: tuple[int, ...], count: int, seed: int = 0) -> torch.Tensor:
    """Inputs in [0, 1] on a 1/16 grid, like the digits pixels (exact as graded messages)."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 17, (count, *shape), generator=generator).float() / 16.0

