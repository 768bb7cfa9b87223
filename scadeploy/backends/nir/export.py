"""The `nir` target: IR -> `model.nir`, with parity measured through spikingjelly's own NIR importer.

Mapping (discrete time step dt, recorded in the graph's metadata and the manifest; the mapping is
spikingjelly's, so its importer reads back exactly our equations):
- conv2d -> Conv2d (zero bias when the conv has none); linear -> Affine (with bias) or Linear;
- IF -> IF(r = 1/dt, v_threshold, v_reset): Euler's v += dt * r * x is v + x;
- LIF -> LIF(tau = tau * dt, r = 1 if decay_input else tau, v_leak = v_reset, v_threshold, v_reset);
- a memoryless neuron (`ir.neuron.memoryless`, what products and complements of spikes become, see
  `ir/passes/spike_logic.py`) -> CubaLIF(tau_syn = tau_mem = dt, r = w_in = 1, v_leak = 0): Euler's
  steps are i = x and v = i, and spikingjelly imports it as CUBALIFNode with both decays 1 - dt/dt = 0,
  so c = c * 0 + x and v = v * 0 + c: v = x exactly (a LIF with tau = dt is not importable);
- avgpool -> AvgPool2d (zero padding counted, as in PyTorch); flatten -> Flatten (CHW, batch excluded);
- add -> fan-in: every source of the sum gets an edge into the reader, and NIR sums incoming edges;
- the time mean, max pooling, products/complements of spikes and constant scales go through
  `rewrites.py` first (exact; scales fold into weights); soft reset is refused.
The input node takes one frame per step (a direct-encoded frame is fed at every step); the output
is per step, and the logits are its mean over the T steps (`metadata["readout"]`).
"""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch

from scadeploy.artifact.layout import NIR_MODEL as NIR_FILE
from scadeploy.errors import UnsupportedError
from scadeploy.ir.graph import Graph, NeuronKind, Node, Op
from scadeploy.ir.neuron import is_memoryless
from scadeploy.ir.nir_conventions import DEFAULT_DT, import_nir, nir_name
from scadeploy.ir.ops import BackendOps
from scadeploy.targets import Target
from scadeploy.targets.backend_options import NirOptions


def lowering_problems(graph: Graph) -> list[str]:
    from scadeploy.backends.nir.rewrites import rewrite_problems

    problems = rewrite_problems(graph)
    problems += NIR_OPS.refusals(graph)
    for add in graph.of_op(Op.ADD):
        sources = _sources(graph, add.name)
        if len(set(sources)) != len(sources):
            problems.append(f"'{add.name}' adds a value to itself (NIR fan-in edges cannot repeat)")
    names = [nir_name(n.name) for n in graph.nodes]
    if len(set(names)) != len(names):
        problems.append("two node names differ only in punctuation, which NIR names cannot keep apart")
    return problems


def check_supported(graph: Graph, target: Target) -> None:
    import_nir()
    problems = lowering_problems(graph)
    if problems:
        raise UnsupportedError("the NIR backend cannot express the model: " + "; ".join(problems),
                               "supported: conv, linear, IF/LIF with hard reset, average pooling, max pooling of "
                               "spikes, flatten, residual adds, a time mean before linear layers")


def _sources(graph: Graph, name: str) -> list[str]:
    """The non-add nodes a value is the sum of (an add's inputs, recursively)."""
    node = graph[name]
    if node.op is not Op.ADD:
        return [name]
    return [s for i in node.inputs for s in _sources(graph, i)]


def _array(t: torch.Tensor) -> np.ndarray:
    return t.detach().to(torch.float32).numpy().copy()


def _full(node: Node, value: float) -> np.ndarray:
    return np.full(node.shape, value, dtype=np.float32)


NIR_OPS = BackendOps("nir")
"""The NIR node of every IR op: `rule(nir, node, graph, dt) -> nir node`; see the module docstring."""


@NIR_OPS.lowers(Op.INPUT, how="Input")
def _input(nir, node: Node, graph: Graph, dt: float):
    return nir.Input(input_type={"input": np.array(node.shape)})


@NIR_OPS.lowers(Op.OUTPUT, how="Output (per step; logits are its time mean)")
def _output(nir, node: Node, graph: Graph, dt: float):
    return nir.Output(output_type={"output": np.array(node.shape)})


def dense_weight(weight: torch.Tensor, groups: int) -> torch.Tensor:
    """A grouped conv's weight as the equivalent dense one (zeros outside each group's block).

    NIR's type inference reads a conv's input channels from its weight, which a grouped conv holds
    only per group, so grouped convs go out dense: the extra terms are exact zeros."""
    out, per_group = weight.shape[:2]
    dense = weight.new_zeros(out, per_group * groups, *weight.shape[2:])
    block = out // groups
    for g in range(groups):
        dense[g * block:(g + 1) * block, g * per_group:(g + 1) * per_group] = weight[g * block:(g + 1) * block]
    return dense


@NIR_OPS.lowers(Op.CONV2D, how="Conv2d (a grouped conv as its dense equivalent)")
def _conv(nir, node: Node, graph: Graph, dt: float):
    a, p = node.attrs, node.params
    bias = _array(p["bias"]) if "bias" in p else np.zeros(a.out_channels, dtype=np.float32)
    return nir.Conv2d(input_shape=tuple(graph[node.inputs[0]].shape[1:]),
                      weight=_array(dense_weight(p["weight"], a.groups)), stride=a.stride, padding=a.padding,
                      dilation=a.dilation, groups=1, bias=bias)


@NIR_OPS.lowers(Op.LINEAR, how="Affine / Linear")
def _linear(nir, node: Node, graph: Graph, dt: float):
    p = node.params
    if "bias" in p:
        return nir.Affine(weight=_array(p["weight"]), bias=_array(p["bias"]))
    return nir.Linear(weight=_array(p["weight"]))


@NIR_OPS.lowers(Op.AVGPOOL, how="AvgPool2d")
def _avgpool(nir, node: Node, graph: Graph, dt: float):
    a = node.attrs
    return nir.AvgPool2d(kernel_size=np.array(a.kernel_size), stride=np.array(a.stride), padding=np.array(a.padding))


@NIR_OPS.lowers(Op.FLATTEN, how="Flatten")
def _flatten(nir, node: Node, graph: Graph, dt: float):
    return nir.Flatten(input_type={"input": np.array(graph[node.inputs[0]].shape)}, start_dim=0, end_dim=-1)


@NIR_OPS.lowers(Op.NEURON, how="IF / LIF (hard reset)")
def _neuron(nir, node: Node, graph: Graph, dt: float):
    a = node.attrs
    if is_memoryless(a):
        tau = np.full(node.shape, dt, dtype=np.float64)  # NOTE: exactly dt, so 1 - dt / tau is exactly 0
        return nir.CubaLIF(tau_syn=tau, tau_mem=tau.copy(), r=_full(node, 1.0),
                           v_leak=_full(node, 0.0), v_threshold=_full(node, a.v_threshold),
                           v_reset=_full(node, 0.0), w_in=_full(node, 1.0))
    if a.kind is NeuronKind.IF:
        return nir.IF(r=_full(node, 1.0 / dt), v_threshold=_full(node, a.v_threshold), v_reset=_full(node, a.v_reset))
    return nir.LIF(tau=_full(node, a.tau * dt), r=_full(node, 1.0 if a.decay_input else a.tau),
                   v_leak=_full(node, a.v_reset), v_threshold=_full(node, a.v_threshold),
                   v_reset=_full(node, a.v_reset))


NIR_OPS.lower(Op.ADD, "fan-in edges into the reader (NIR sums incoming edges)")
NIR_OPS.lower(Op.MAXPOOL, "OR of spikes: depthwise ones Conv2d + IF (spikes only)")
NIR_OPS.lower(Op.MUL, "AND (IAND with a complement) of spikes: +-1 identity Conv2d/Linear fan-in into a memoryless "
              "CubaLIF (tau = dt), threshold 2 (1); analog products refused")
NIR_OPS.lower(Op.COMPLEMENT, "NOT of spikes: -1 identity Conv2d/Linear with bias 1 into a memoryless CubaLIF; "
              "fused into a product's IAND")
NIR_OPS.lower(Op.SCALE, "folded into the conv/linear that reads it (refused otherwise: spikingjelly's NIR importer "
              "has no Scale)")
NIR_OPS.lower(Op.MEAN_OVER_TIME, "moved after the linear layers that read it (exact), then the output's mean")
NIR_OPS.refuse(Op.ADAPTIVE_AVGPOOL, "it has no fixed window; compile folds it into the flatten -> linear "
               "that reads it, and this one feeds something else")
NIR_OPS.refuse(Op.BATCHNORM, "NIR has no batch norm; it must fold into the conv/linear before it")


def _node(nir, node: Node, graph: Graph, dt: float):
    return NIR_OPS.rule(node)(nir, node, graph, dt)


def to_nir(graph: Graph, dt: float = DEFAULT_DT):
    """The NIR graph of a BN-folded IR graph (see the module docstring)."""
    from scadeploy.backends.nir.rewrites import rewrite_for_nir

    nir = import_nir()
    problems = lowering_problems(graph)
    if problems:
        raise UnsupportedError("the NIR backend cannot express the model: " + "; ".join(problems))
    graph = rewrite_for_nir(graph)
    nodes, edges = {}, []
    for node in graph.nodes:
        if node.op is Op.ADD:
            continue  # an add is its readers' fan-in
        nodes[nir_name(node.name)] = _node(nir, node, graph, dt)
        for source in node.inputs:
            edges += [(nir_name(s), nir_name(node.name)) for s in _sources(graph, source)]
    metadata = {"producer": f"scadeploy {version('scadeploy')}", "dt": dt, "timesteps": graph.timesteps,
                "encoding": graph.input.attrs.encoding.value,
                "readout": "logits are the mean over the T steps of the per-step output"}
    return nir.NIRGraph(nodes, edges, metadata=metadata)


def export(graph: Graph, target: Target, out_dir: str | Path, samples: torch.Tensor) -> dict:
    """Write `model.nir`; return the manifest section with the parity spikingjelly's importer measures."""
    from scadeploy.backends.nir.peers import spikingjelly_parity

    check_supported(graph, target)
    options: NirOptions = target.options
    dt, parity_samples = options.dt, options.parity_samples
    nir_graph = to_nir(graph, dt)
    path = Path(out_dir) / NIR_FILE
    tmp = path.with_name(f".{path.name}.tmp")
    import_nir().write(tmp, nir_graph)
    tmp.replace(path)
    direct = graph.input.attrs.encoding.value == "direct"
    x = samples[:parity_samples] if direct else samples[:, :parity_samples]
    return {"files": [NIR_FILE], "dt": dt, "timesteps": graph.timesteps, "nodes": len(nir_graph.nodes),
            "edges": len(nir_graph.edges), "readout": nir_graph.metadata["readout"],
            "parity": spikingjelly_parity(path, graph, x, dt).to_dict()}
