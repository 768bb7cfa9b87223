"""Frontend: a spikingjelly model -> IR, by torch.fx in single-step mode with neurons as leaves.

Tracing in single-step mode keeps tensors 4-D, so channels are never confused with time. Each
module type has one converter in `MODULE_CONVERTERS`; every other module or function raises an
UnsupportedError naming it and the place it is used, after collecting all of them.
"""

from __future__ import annotations

import copy
import operator
from collections.abc import Callable

import torch
import torch.fx
from spikingjelly.activation_based import functional, neuron
from torch import nn

from scadeploy.errors import GraphError, ShapeError, UnsupportedError
from scadeploy.ir.graph import (
    AddAttrs,
    BatchNormAttrs,
    Conv2dAttrs,
    Encoding,
    FlattenAttrs,
    Graph,
    InputAttrs,
    LinearAttrs,
    MeanOverTimeAttrs,
    NeuronAttrs,
    NeuronKind,
    Node,
    Op,
    OutputAttrs,
    PoolAttrs,
    Shape,
)
from scadeploy.ir.ops import infer_shape
from scadeploy.ir.verify import verify
from scadeploy.models.common import MeanOverTime

# A converter returns (op, attrs, params) for a module, or None for an identity (dropout in eval).
Converted = tuple[Op, object, dict[str, torch.Tensor]] | None


def _pair(value: int | tuple[int, ...]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


def _tensor(t: torch.Tensor) -> torch.Tensor:
    return t.detach().to(torch.float32).clone()


def _conv(m: nn.Conv2d, shape: Shape) -> Converted:
    if isinstance(m.padding, str) or m.padding_mode != "zeros":
        raise UnsupportedError(f"padding {m.padding!r} with mode '{m.padding_mode}' is not supported",
                               "use integer zero padding")
    attrs = Conv2dAttrs(m.in_channels, m.out_channels, _pair(m.kernel_size), _pair(m.stride),
                        _pair(m.padding), _pair(m.dilation), m.groups, m.bias is not None)
    params = {"weight": _tensor(m.weight)} | ({"bias": _tensor(m.bias)} if m.bias is not None else {})
    return Op.CONV2D, attrs, params


def _linear(m: nn.Linear, shape: Shape) -> Converted:
    params = {"weight": _tensor(m.weight)} | ({"bias": _tensor(m.bias)} if m.bias is not None else {})
    return Op.LINEAR, LinearAttrs(m.in_features, m.out_features, m.bias is not None), params


def _batchnorm(m: nn.modules.batchnorm._BatchNorm, shape: Shape) -> Converted:
    if m.running_mean is None:
        raise UnsupportedError("batch norm without running statistics cannot be deployed",
                               "build it with track_running_stats=True")
    c = m.num_features
    params = {
        "weight": _tensor(m.weight) if m.affine else torch.ones(c),
        "bias": _tensor(m.bias) if m.affine else torch.zeros(c),
        "running_mean": _tensor(m.running_mean),
        "running_var": _tensor(m.running_var),
    }
    return Op.BATCHNORM, BatchNormAttrs(c, float(m.eps)), params


def _maxpool(m: nn.MaxPool2d, shape: Shape) -> Converted:
    if _pair(m.dilation) != (1, 1) or m.ceil_mode:
        raise UnsupportedError("max pooling with dilation or ceil_mode is not supported")
    stride = m.stride if m.stride is not None else m.kernel_size
    return Op.MAXPOOL, PoolAttrs(_pair(m.kernel_size), _pair(stride), _pair(m.padding)), {}


def _avgpool(m: nn.AvgPool2d, shape: Shape) -> Converted:
    if m.ceil_mode or not m.count_include_pad or m.divisor_override is not None:
        raise UnsupportedError("average pooling with ceil_mode, count_include_pad=False or a divisor "
                               "override is not supported")
    stride = m.stride if m.stride is not None else m.kernel_size
    return Op.AVGPOOL, PoolAttrs(_pair(m.kernel_size), _pair(stride), _pair(m.padding)), {}


def _adaptive_avgpool(m: nn.AdaptiveAvgPool2d, shape: Shape) -> Converted:
    out = _pair(m.output_size)
    _, h, w = shape
    if h % out[0] or w % out[1]:
        raise UnsupportedError(f"adaptive average pooling from {h}x{w} to {out[0]}x{out[1]} is not a "
                               "fixed pooling window", "use input sizes divisible by the output size")
    kernel = (h // out[0], w // out[1])
    return Op.AVGPOOL, PoolAttrs(kernel, kernel), {}


def _flatten(m: nn.Flatten, shape: Shape) -> Converted:
    if m.start_dim != 1 or m.end_dim != -1:
        raise UnsupportedError(f"flatten({m.start_dim}, {m.end_dim}) is not supported", "use flatten(1)")
    return Op.FLATTEN, FlattenAttrs(), {}


def _reset_value(m: neuron.BaseNode) -> float | None:
    return None if m.v_reset is None else float(m.v_reset)


def _if_node(m: neuron.IFNode, shape: Shape) -> Converted:
    return Op.NEURON, NeuronAttrs(NeuronKind.IF, float(m.v_threshold), _reset_value(m)), {}


def _lif_node(m: neuron.LIFNode, shape: Shape) -> Converted:
    attrs = NeuronAttrs(NeuronKind.LIF, float(m.v_threshold), _reset_value(m), float(m.tau), bool(m.decay_input))
    return Op.NEURON, attrs, {}


def _plif_node(m: neuron.ParametricLIFNode, shape: Shape) -> Converted:
    tau = float(1.0 / torch.sigmoid(m.w.detach()).item())
    attrs = NeuronAttrs(NeuronKind.LIF, float(m.v_threshold), _reset_value(m), tau, bool(m.decay_input))
    return Op.NEURON, attrs, {}


def _mean_over_time(m: MeanOverTime, shape: Shape) -> Converted:
    return Op.MEAN_OVER_TIME, MeanOverTimeAttrs(), {}


def _identity(m: nn.Module, shape: Shape) -> Converted:
    return None


# Layers are matched along the class hierarchy (spikingjelly layers subclass torch's).
MODULE_CONVERTERS: dict[type, Callable[[nn.Module, Shape], Converted]] = {
    nn.Conv2d: _conv,
    nn.Linear: _linear,
    nn.BatchNorm1d: _batchnorm,
    nn.BatchNorm2d: _batchnorm,
    nn.MaxPool2d: _maxpool,
    nn.AvgPool2d: _avgpool,
    nn.AdaptiveAvgPool2d: _adaptive_avgpool,
    nn.Flatten: _flatten,
    MeanOverTime: _mean_over_time,
    nn.Dropout: _identity,
    nn.Identity: _identity,
}
# Neurons are matched by exact class: a subclass may change the dynamics.
NEURON_CONVERTERS: dict[type, Callable[[nn.Module, Shape], Converted]] = {
    neuron.IFNode: _if_node,
    neuron.LIFNode: _lif_node,
    neuron.ParametricLIFNode: _plif_node,
}
ADD_FUNCTIONS = (operator.add, operator.iadd, torch.add)
FLATTEN_FUNCTIONS = (torch.flatten,)


def supported_layers() -> list[str]:
    """Names of every module type the frontend converts, for help texts and errors."""
    return sorted({t.__name__ for t in (*MODULE_CONVERTERS, *NEURON_CONVERTERS)})


def find_converter(module: nn.Module) -> Callable[[nn.Module, Shape], Converted] | None:
    if isinstance(module, neuron.BaseNode):
        return NEURON_CONVERTERS.get(type(module))
    for cls in type(module).__mro__:
        if cls in MODULE_CONVERTERS:
            return MODULE_CONVERTERS[cls]
    return None


class _LeafTracer(torch.fx.Tracer):
    """Keeps every neuron and every convertible layer as one call_module node."""

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        if isinstance(m, neuron.BaseNode) or find_converter(m) is not None:
            return True
        return super().is_leaf_module(m, qualname)


def _single_step_copy(model: nn.Module) -> nn.Module:
    model = copy.deepcopy(model).eval()
    functional.set_step_mode(model, "s")
    functional.reset_net(model)
    return model


def _symbolic_trace(model: nn.Module) -> torch.fx.Graph:
    try:
        return _LeafTracer().trace(model)
    except Exception as exc:  # fx raises many types for untraceable Python control flow
        raise UnsupportedError(f"torch.fx cannot trace the model: {exc}",
                               "remove data-dependent Python control flow from forward()") from exc


def trace_model(model: nn.Module, input_shape: Shape, timesteps: int,
                encoding: Encoding = Encoding.DIRECT) -> Graph:
    """Trace `model` (spikingjelly, any step mode) into a verified IR graph."""
    module = _single_step_copy(model)
    fx_graph = _symbolic_trace(module)
    modules = dict(module.named_modules())
    name_of: dict[torch.fx.Node, str] = {}  # fx node -> IR node name (aliases for identities)
    nodes: dict[str, Node] = {}
    problems: list[str] = []

    def emit(name: str, op: Op, inputs: tuple[str, ...], attrs: object, params: dict) -> str:
        if name in nodes:
            raise UnsupportedError(f"'{name}' is used more than once; shared layers are not supported")
        shape = tuple(input_shape) if op is Op.INPUT else _shape_of(name, op, attrs, [nodes[i].shape for i in inputs])
        nodes[name] = Node(name, op, inputs, attrs, shape, params)
        return name

    for fx_node in fx_graph.nodes:
        # NOTE: layers may be called with keywords (`self.fc(input=x)`, which spikingjelly accepts).
        args = [a for a in (*fx_node.args, *fx_node.kwargs.values()) if isinstance(a, torch.fx.Node)]
        inputs = tuple(name_of[a] for a in args if a in name_of)
        where = f"'{fx_node.target}'" if fx_node.op == "call_module" else f"node '{fx_node.name}'"
        try:
            if fx_node.op == "placeholder":
                if any(n.op is Op.INPUT for n in nodes.values()):
                    raise UnsupportedError("models with more than one input are not supported")
                name_of[fx_node] = emit("input", Op.INPUT, (), InputAttrs(encoding), {})
            elif len(inputs) != len(args):
                continue  # an input we could not convert was already reported
            elif fx_node.op == "output":
                emit("output", Op.OUTPUT, inputs, OutputAttrs(), {})
            elif fx_node.op == "call_module":
                name_of[fx_node] = _convert_module(fx_node, modules[fx_node.target], inputs, nodes, emit)
            elif fx_node.op in ("call_function", "call_method"):
                name_of[fx_node] = _convert_function(fx_node, inputs, emit)
            else:
                raise UnsupportedError(f"'{fx_node.op}' of '{fx_node.target}' is not supported")
        except UnsupportedError as exc:
            problems.append(f"{exc.message} (at {where})")
    if problems:
        raise UnsupportedError(
            "the model cannot be converted: " + "; ".join(problems),
            f"supported layers: {', '.join(supported_layers())}; functions: +, torch.flatten(x, 1)",
        )
    return verify(Graph(tuple(nodes.values()), timesteps))


def _shape_of(name: str, op: Op, attrs: object, input_shapes: list[Shape]) -> Shape:
    """The shape rule's answer; a mismatch here comes from the model and its input shape, not from a pass."""
    try:
        shape = infer_shape(op, attrs, input_shapes)
    except GraphError as exc:
        raise ShapeError(f"the input shape does not fit the model at '{name}': {exc.message}",
                         "check input_shape (C, H, W) against the model's channels and input size") from exc
    if any(d < 1 for d in shape):
        raise ShapeError(f"the input is too small for the model: '{name}' would have shape {shape}",
                         "use a larger input_size, or a model with fewer pooling stages")
    return shape


def _convert_module(fx_node, module: nn.Module, inputs, nodes, emit) -> str:
    converter = find_converter(module)
    if converter is None:
        raise UnsupportedError(f"layer {type(module).__module__}.{type(module).__name__} is not supported")
    (source,) = inputs
    converted = converter(module, nodes[source].shape)
    if converted is None:
        return source
    op, attrs, params = converted
    return emit(str(fx_node.target), op, inputs, attrs, params)


# A function converter returns the IR node name for a call_function/call_method node, or None when the
# call is not its kind. Each kind of call has its own converter; the first that answers wins.
FunctionConverter = Callable[[torch.fx.Node, tuple[str, ...], Callable[..., str]], str | None]


def _add(fx_node, inputs, emit) -> str | None:
    target = fx_node.target
    is_add = target in ADD_FUNCTIONS or target in ("add", "add_", "__add__", "__iadd__")
    if is_add and len(inputs) == len(fx_node.args) >= 2 and not fx_node.kwargs:
        return emit(fx_node.name, Op.ADD, inputs, AddAttrs(), {})
    return None


def _flatten_function(fx_node, inputs, emit) -> str | None:
    target = fx_node.target
    is_flatten = target in FLATTEN_FUNCTIONS or target == "flatten"
    if is_flatten and tuple(fx_node.args[1:]) in ((1,), (1, -1)) and not fx_node.kwargs:
        return emit(fx_node.name, Op.FLATTEN, inputs, FlattenAttrs(), {})
    return None


FUNCTION_CONVERTERS: list[FunctionConverter] = [_add, _flatten_function]


def _convert_function(fx_node, inputs, emit) -> str:
    for converter in FUNCTION_CONVERTERS:
        name = converter(fx_node, inputs, emit)
        if name is not None:
            return name
    target = fx_node.target
    label = getattr(target, "__name__", str(target))
    raise UnsupportedError(f"function '{label}' with arguments {fx_node.args[1:]} is not supported")
