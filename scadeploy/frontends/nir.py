"""A NIR file -> IR: `scadeploy compile model.nir` strips and deploys graphs other frameworks wrote.

Accepted nodes: Input, Output, Conv2d, Affine, Linear, AvgPool2d, Flatten (of a whole sample), IF
and LIF with uniform parameters. Their discrete-time meaning at step dt (from the graph's metadata,
else from an IF's r = 1/dt, else 1e-4 s, spikingjelly's default) is the inverse of `export.py`:
IF needs r * dt == 1; LIF gives tau_steps = tau / dt, decay_input when r == 1, not when
r == tau_steps, and needs v_leak == v_reset. A CubaLIF without memory (tau_syn = tau_mem = dt,
r = w_in = 1, v_leak = v_reset = 0: i = x and v = i at every step, what `export.py` writes for the
spike-logic neurons of SEW ResNets) is the memoryless neuron `ir.neuron.memoryless`. Several edges
into one node become an `add` before it (NIR sums fan-in). Everything else (recurrence, other
CubaLIF, LI, Delay, SumPool2d, ...) is refused in one error naming each node; a broken file, a cycle
or inconsistent shapes are one DataError.
"""

from __future__ import annotations

from collections.abc import Callable
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import numpy as np
import torch

from scadeploy.errors import DataError, GraphError, UnsupportedError
from scadeploy.ir.graph import (
    AddAttrs,
    Conv2dAttrs,
    Encoding,
    FlattenAttrs,
    Graph,
    InputAttrs,
    LinearAttrs,
    NeuronAttrs,
    NeuronKind,
    Node,
    Op,
    OutputAttrs,
    PoolAttrs,
    Shape,
)
from scadeploy.ir.neuron import memoryless
from scadeploy.ir.nir_conventions import DEFAULT_DT, import_nir
from scadeploy.ir.ops import infer_shape
from scadeploy.ir.verify import verify

RTOL = 1e-6


def read_nir(path: str | Path):
    """The NIR graph in `path`; one DataError when it is not a readable NIR file."""
    nir = import_nir()
    path = Path(path)
    if not path.is_file():
        raise DataError(f"NIR file '{path}' does not exist", "check the path")
    try:
        return nir.read(str(path), type_check=False)  # shapes are checked by scadeploy's own rules
    except Exception as exc:  # h5py, nir's own checks and numpy raise many types on foreign files
        reason = " ".join(str(exc).split())[:160]
        raise DataError(f"'{path}' is not a readable NIR file ({type(exc).__name__}: {reason})",
                        "write it with nir.write (or a framework's NIR exporter)") from exc


def _uniform(value: object, what: str) -> float:
    array = np.asarray(value, dtype=np.float64)
    if array.size == 0 or not np.all(np.isfinite(array)):
        raise UnsupportedError(f"{what} is missing or not finite")
    if not np.allclose(array, array.flat[0], rtol=RTOL, atol=0):
        raise UnsupportedError(f"{what} differs between neurons (scadeploy's neurons share one value)")
    return float(array.flat[0])


def _pair(value: object, what: str) -> tuple[int, int]:
    array = np.asarray(value).reshape(-1)
    if array.size not in (1, 2) or not np.issubdtype(array.dtype, np.number):
        raise UnsupportedError(f"{what} {value!r} is not an integer or a pair of integers")
    pair = (int(array[0]), int(array[-1]))
    if any(v < 0 for v in pair) or not np.allclose(array, np.asarray(pair[: array.size])):
        raise UnsupportedError(f"{what} {value!r} is not a pair of non-negative integers")
    return pair


def _close(a: float, b: float) -> bool:
    return bool(np.isclose(a, b, rtol=RTOL, atol=1e-12))


def _graph_dt(nir_graph) -> float:
    dt = nir_graph.metadata.get("dt") if isinstance(nir_graph.metadata, dict) else None
    if dt is not None:
        dt = float(np.asarray(dt).reshape(-1)[0])
        if not np.isfinite(dt) or dt <= 0:
            raise DataError(f"the NIR graph's metadata dt is {dt}, not a positive time step")
        return dt
    for node in nir_graph.nodes.values():
        if type(node).__name__ == "IF":
            return 1.0 / _uniform(node.r, "IF r")
    return DEFAULT_DT


def _hard_reset(node, what: str) -> float:
    value = getattr(node, "v_reset", None)
    if value is None or not np.all(np.isfinite(np.asarray(value, dtype=np.float64))):
        raise UnsupportedError(f"{what} v_reset is not a finite value (a soft reset?); NIR neurons reset to a value")
    return _uniform(value, f"{what} v_reset")


def _if(node, dt: float) -> tuple[Op, object, dict]:
    r = _uniform(node.r, "IF r")
    if not _close(r * dt, 1.0):
        raise UnsupportedError(f"IF r = {r:g} is not 1/dt = {1 / dt:g} (a scaled input)")
    return Op.NEURON, NeuronAttrs(NeuronKind.IF, _uniform(node.v_threshold, "IF v_threshold"),
                                  _hard_reset(node, "IF")), {}


def _lif(node, dt: float) -> tuple[Op, object, dict]:
    tau = _uniform(node.tau, "LIF tau") / dt
    r = _uniform(node.r, "LIF r")
    v_reset = _hard_reset(node, "LIF")
    if not tau > 1.0:
        raise UnsupportedError(f"LIF tau / dt = {tau:g} must be greater than 1")
    if not _close(_uniform(node.v_leak, "LIF v_leak"), v_reset):
        raise UnsupportedError("LIF v_leak differs from v_reset")
    if _close(r, 1.0):
        decay_input = True
    elif _close(r, tau):
        decay_input = False
    else:
        raise UnsupportedError(f"LIF r = {r:g} is neither 1 nor tau / dt = {tau:g}")
    return Op.NEURON, NeuronAttrs(NeuronKind.LIF, _uniform(node.v_threshold, "LIF v_threshold"), v_reset, tau,
                                  decay_input), {}


def _memoryless_cuba_lif(node, dt: float) -> tuple[Op, object, dict]:
    """A CubaLIF whose current and voltage both decay fully each step (tau = dt): the memoryless neuron."""
    taus = (_uniform(node.tau_syn, "CubaLIF tau_syn") / dt, _uniform(node.tau_mem, "CubaLIF tau_mem") / dt)
    gains = (_uniform(node.r, "CubaLIF r"), _uniform(node.w_in, "CubaLIF w_in"))
    rest = (_uniform(node.v_leak, "CubaLIF v_leak"), _hard_reset(node, "CubaLIF"))
    if not all(_close(v, 1.0) for v in (*taus, *gains)) or not all(_close(v, 0.0) for v in rest):
        raise UnsupportedError(f"CubaLIF with tau_syn / dt = {taus[0]:g}, tau_mem / dt = {taus[1]:g} has memory "
                               "(only tau_syn = tau_mem = dt, r = w_in = 1, v_leak = v_reset = 0 is supported)")
    return Op.NEURON, memoryless(_uniform(node.v_threshold, "CubaLIF v_threshold")), {}


def _tensor(value: object, what: str) -> torch.Tensor:
    array = np.asarray(value, dtype=np.float64)
    if not np.all(np.isfinite(array)):
        raise UnsupportedError(f"{what} holds NaN or infinite values")
    return torch.from_numpy(array.astype(np.float32))


def _conv(node, dt: float) -> tuple[Op, object, dict]:
    weight = _tensor(node.weight, "Conv2d weight")
    if weight.dim() != 4:
        raise UnsupportedError(f"Conv2d weight has shape {list(weight.shape)}, expected 4-D")
    if isinstance(node.padding, str):
        raise UnsupportedError(f"Conv2d padding '{node.padding}' is not supported", "use integer padding")
    groups = int(np.asarray(node.groups).reshape(-1)[0])
    if groups < 1:
        raise UnsupportedError(f"Conv2d groups = {groups}")
    bias = _tensor(node.bias, "Conv2d bias").reshape(-1)
    attrs = Conv2dAttrs(weight.shape[1] * groups, weight.shape[0], (weight.shape[2], weight.shape[3]),
                        _pair(node.stride, "Conv2d stride"), _pair(node.padding, "Conv2d padding"),
                        _pair(node.dilation, "Conv2d dilation"), groups, True)
    return Op.CONV2D, attrs, {"weight": weight, "bias": bias}


def _affine(node, dt: float) -> tuple[Op, object, dict]:
    weight = _tensor(node.weight, "Affine weight")
    if weight.dim() != 2:
        raise UnsupportedError(f"Affine weight has shape {list(weight.shape)}, expected 2-D")
    bias = _tensor(node.bias, "Affine bias").reshape(-1)
    return Op.LINEAR, LinearAttrs(weight.shape[1], weight.shape[0], True), {"weight": weight, "bias": bias}


def _linear(node, dt: float) -> tuple[Op, object, dict]:
    weight = _tensor(node.weight, "Linear weight")
    if weight.dim() != 2:
        raise UnsupportedError(f"Linear weight has shape {list(weight.shape)}, expected 2-D")
    return Op.LINEAR, LinearAttrs(weight.shape[1], weight.shape[0], False), {"weight": weight}


def _avgpool(node, dt: float) -> tuple[Op, object, dict]:
    return Op.AVGPOOL, PoolAttrs(_pair(node.kernel_size, "AvgPool2d kernel_size"),
                                 _pair(node.stride, "AvgPool2d stride"), _pair(node.padding, "AvgPool2d padding")), {}


def _flatten(node, dt: float) -> tuple[Op, object, dict]:
    if int(node.start_dim) != 0 or int(node.end_dim) != -1:
        raise UnsupportedError(f"Flatten({node.start_dim}, {node.end_dim}) is not supported",
                               "flatten a whole sample (start_dim 0, end_dim -1)")
    return Op.FLATTEN, FlattenAttrs(), {}


# NIR node type name -> converter. Matched by name so that `nir` is imported only when used.
CONVERTERS: dict[str, Callable[[object, float], tuple[Op, object, dict]]] = {
    "Conv2d": _conv, "Affine": _affine, "Linear": _linear, "AvgPool2d": _avgpool, "Flatten": _flatten,
    "IF": _if, "LIF": _lif, "CubaLIF": _memoryless_cuba_lif,
}


def _order(nir_graph) -> list[str]:
    predecessors: dict[str, set[str]] = {name: set() for name in nir_graph.nodes}
    for source, target in nir_graph.edges:
        if source not in predecessors or target not in predecessors:
            raise DataError(f"the NIR graph has an edge {source!r} -> {target!r} to a node it does not hold")
        predecessors[target].add(source)
    try:
        return list(TopologicalSorter(predecessors).static_order())
    except CycleError as exc:
        raise UnsupportedError(f"the NIR graph has a cycle through {exc.args[1][:4]} (recurrent connections)",
                               "scadeploy deploys feed-forward networks") from exc


def nir_input_shape(nir_graph) -> Shape:
    """The per-sample shape of the graph's one Input node."""
    inputs = [node for node in nir_graph.nodes.values() if type(node).__name__ == "Input"]
    if len(inputs) != 1:
        raise UnsupportedError(f"the NIR graph has {len(inputs)} Input nodes, scadeploy takes exactly one")
    return _input_shape(inputs[0])


def _input_shape(node) -> Shape:
    types = node.input_type
    shape = next(iter(types.values())) if isinstance(types, dict) and types else None
    dims = np.asarray(shape).reshape(-1) if shape is not None else np.zeros(0)
    if dims.size == 0 or not np.all(dims >= 1):
        raise DataError(f"the NIR input has type {types!r}, not a shape of positive sizes")
    return tuple(int(d) for d in dims)


def nir_to_graph(nir_graph, timesteps: int, encoding: Encoding = Encoding.DIRECT) -> tuple[Graph, float]:
    """(IR graph, dt) of a NIR graph, verified; see the module docstring for what is accepted."""
    dt = _graph_dt(nir_graph)
    inputs_of: dict[str, list[str]] = {name: [] for name in nir_graph.nodes}
    for source, target in nir_graph.edges:
        inputs_of.setdefault(target, []).append(source)
    nodes: dict[str, Node] = {}
    problems: list[str] = []

    def emit(name: str, op: Op, inputs: tuple[str, ...], attrs: object, params: dict, shape: Shape | None = None):
        try:
            shape = shape or infer_shape(op, attrs, [nodes[i].shape for i in inputs])
        except GraphError as exc:
            raise DataError(f"the NIR graph's shapes do not fit at '{name}': {exc.message}") from exc
        nodes[name] = Node(name, op, inputs, attrs, shape, params)

    for name in _order(nir_graph):
        node = nir_graph.nodes[name]
        kind = type(node).__name__
        sources = tuple(inputs_of.get(name, []))
        if kind == "Input":
            emit(name, Op.INPUT, (), InputAttrs(encoding), {}, _input_shape(node))
            continue
        if any(s not in nodes for s in sources):
            continue  # a source was refused: already reported
        if not sources:
            problems.append(f"'{name}' ({kind}) has no input edge")
            continue
        if len(sources) > 1:  # NIR sums fan-in
            emit(f"{name}.sum", Op.ADD, sources, AddAttrs(), {})
            sources = (f"{name}.sum",)
        if kind == "Output":
            emit(name, Op.OUTPUT, sources, OutputAttrs(), {})
            continue
        converter = CONVERTERS.get(kind)
        try:
            if converter is None:
                raise UnsupportedError(f"node type {kind} is not supported")
            op, attrs, params = converter(node, dt)
            emit(name, op, sources, attrs, params)
        except UnsupportedError as exc:
            problems.append(f"'{name}': {exc.message}")
    if problems:
        raise UnsupportedError("the NIR graph cannot be converted: " + "; ".join(problems),
                               f"supported NIR nodes: Input, Output, {', '.join(CONVERTERS)}")
    if sum(n.op is Op.OUTPUT for n in nodes.values()) != 1 or sum(n.op is Op.INPUT for n in nodes.values()) != 1:
        raise UnsupportedError("the NIR graph must have exactly one Input and one Output node")
    ordered = sorted(nodes.values(), key=lambda n: n.op is Op.OUTPUT)  # the output last, order kept otherwise
    try:
        return verify(Graph(tuple(ordered), timesteps)), dt
    except GraphError as exc:
        raise DataError(f"the NIR graph is not a valid network: {exc.message}") from exc
