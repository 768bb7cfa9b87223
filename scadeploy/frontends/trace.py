"""Frontend: a spikingjelly model -> IR, by torch.fx with neurons and layers as leaves.

Tracing is specialised to the given input shape (`frontends/shape_tracer.py`): every traced value
knows its concrete shape, so forward() may branch on `x.ndim` and reshapes are judged by what
they do to each sample. It runs in single-step mode first, where layers see frames `[N, ...]` and
channels are never confused with time; a model written for sequences `[T, N, ...]` (MS-ResNet's
`_to_sequence`, `flatten(2)`, `mean(0)`) is traced in multi-step mode instead, where axis 0 is time.
Each module type has one converter in `MODULE_CONVERTERS` (neurons: `NEURON_CONVERTERS`), each kind
of function call one in `FUNCTION_CONVERTERS`; everything else raises an UnsupportedError naming
the user's module path and class, after collecting all of them.
"""

from __future__ import annotations

import copy
import functools
import math
import operator
from collections.abc import Callable, Sequence

import torch
import torch.fx
from spikingjelly.activation_based import base, layer, neuron
from torch import nn

from scadeploy.errors import GraphError, ScadeployError, ShapeError, UnsupportedError
from scadeploy.frontends.shape_tracer import (
    LEAD,
    PER_STEP,
    Lead,
    LeafPolicy,
    enclosing_path,
    example_input,
    example_of,
    is_multi_step_only,
    scope_of,
    step_mode_copy,
)
from scadeploy.frontends.shape_tracer import trace as shape_trace
from scadeploy.ir.graph import (
    AdaptivePoolAttrs,
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


def _spatial(shape: Shape, what: str) -> tuple[int, int]:
    if len(shape) != 3:
        raise UnsupportedError(f"{what} expects a (C, H, W) map, got per-sample shape {shape}")
    return shape[1], shape[2]


def _output_size(size: int | None | tuple, spatial: tuple[int, int]) -> tuple[int, int]:
    """An adaptive pool's output size, with None (keep that axis) resolved."""
    pair = (size, size) if size is None or isinstance(size, int) else tuple(size)
    return tuple(spatial[i] if s is None else int(s) for i, s in enumerate(pair))  # type: ignore[return-value]


def _adaptive_avgpool(m: nn.AdaptiveAvgPool2d, shape: Shape) -> Converted:
    """A fixed window where the output size divides the input (at 224 px, 7x7 -> 7x7 is the identity window);
    otherwise its bins differ or overlap (1x1 -> 7x7 replicates): `adaptive_avgpool`, which compile folds into
    the linear layer after it (`ir/passes/fold_adaptive_pool.py`)."""
    h, w = _spatial(shape, "adaptive average pooling")
    out = _output_size(m.output_size, (h, w))
    if h % out[0] == 0 and w % out[1] == 0:
        kernel = (h // out[0], w // out[1])
        return Op.AVGPOOL, PoolAttrs(kernel, kernel), {}
    return Op.ADAPTIVE_AVGPOOL, AdaptivePoolAttrs(out), {}


def _voting(m: layer.VotingLayer, shape: Shape) -> Converted:
    """VotingLayer averages each block of `voting_size` features (`avg_pool1d`, the trailing F % v dropped):
    the fixed linear map W[j, j*v:(j+1)*v] = 1/v without bias.

    A linear layer rather than an op of its own: every backend runs linear layers (on Loihi it is the
    readout integrator) and stripping slices their inputs already. Exact in exact arithmetic; in floats
    `sum(x * (1/v))` is not always bit-equal to `sum(x) / v` when 1/v is not a power of two, so 1/v is
    kept in float64 (rounded to float32 only for the backends, `ir/passes/deploy.py`): the trace check,
    which runs in float64, then sees at most a last-bit difference.
    """
    if len(shape) != 1:
        raise UnsupportedError(f"VotingLayer reads features (F,), got per-sample shape {shape}")
    features, v = shape[0], int(m.voting_size)
    votes = features // v
    if votes < 1:
        raise UnsupportedError(f"VotingLayer({v}) reads only {features} features")
    weight = torch.zeros(votes, features, dtype=torch.float64)
    for j in range(votes):
        weight[j, j * v:(j + 1) * v] = 1.0 / v
    return Op.LINEAR, LinearAttrs(features, votes, False), {"weight": weight}


def _standardized_weight(m: layer.WSConv2d | layer.WSLinear) -> torch.Tensor:
    """The weight a weight-standardized layer computes on every call (`get_weight()`: `weight` centred,
    scaled by its spread and by `gain`). It is not a float32 parameter but a function of them, so it is kept
    in float64, as the trace check computes it; `ir/passes/deploy.py` rounds it to float32 for the backends."""
    with torch.no_grad():
        return copy.deepcopy(m).double().get_weight().clone()


def _ws_conv(m: layer.WSConv2d, shape: Shape) -> Converted:
    op, attrs, params = _conv(m, shape)
    return op, attrs, params | {"weight": _standardized_weight(m)}


def _ws_linear(m: layer.WSLinear, shape: Shape) -> Converted:
    op, attrs, params = _linear(m, shape)
    return op, attrs, params | {"weight": _standardized_weight(m)}


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


def _online_lif_node(m: neuron.LIFNode, shape: Shape) -> Converted:
    """OTTT / SLTT LIF nodes run `functional.lif_step` with the heaviside in eval (their traces and detached
    potentials only matter in training): a LIF with their own tau, decay_input and reset (OTTT's defaults:
    decay_input=False, v_reset=None, i.e. soft reset)."""
    return _lif_node(m, shape)


# Layers are matched along the class hierarchy (spikingjelly layers subclass torch's).
MODULE_CONVERTERS: dict[type, Callable[[nn.Module, Shape], Converted]] = {
    nn.Conv2d: _conv,
    layer.WSConv2d: _ws_conv,
    nn.Linear: _linear,
    layer.WSLinear: _ws_linear,
    nn.BatchNorm1d: _batchnorm,
    nn.BatchNorm2d: _batchnorm,
    nn.MaxPool2d: _maxpool,
    nn.AvgPool2d: _avgpool,
    nn.AdaptiveAvgPool2d: _adaptive_avgpool,
    nn.Flatten: _flatten,
    layer.VotingLayer: _voting,
    MeanOverTime: _mean_over_time,
    nn.modules.dropout._DropoutNd: _identity,
    layer.Dropout: _identity,  # a MemoryModule, identity in eval (the copy traced is in eval mode)
    nn.Identity: _identity,
}
# Neurons are matched by exact class: a subclass may change the dynamics.
NEURON_CONVERTERS: dict[type, Callable[[nn.Module, Shape], Converted]] = {
    neuron.IFNode: _if_node,
    neuron.LIFNode: _lif_node,
    neuron.ParametricLIFNode: _plif_node,
    neuron.OTTTLIFNode: _online_lif_node,
    neuron.SLTTLIFNode: _online_lif_node,
}
# Layers that act on the last axis whatever comes before it, so they act per step on a sequence too.
LAST_AXIS_LAYERS = (nn.Linear, nn.modules.dropout._DropoutNd, nn.Identity)
# Multi-step-only modules known to mix the time steps, and how.
TIME_MIXING = {
    layer.TemporalWiseAttention: "mixes time steps (its attention weights are computed over the whole sequence)",
    layer.MultiDimensionalAttention: "mixes time steps (its attention pools over the whole sequence)",
}
ADD_FUNCTIONS = (operator.add, operator.iadd, torch.add)
STEP_MODES = ("s", "m")
VIEW = "scadeploy_view"  # fx node.meta key: the traced value has size-1 axes its IR node does not, or lacks some
MAX_PROBLEMS = 5


def supported_layers() -> list[str]:
    """Names of every module type the frontend converts, for help texts and errors."""
    return sorted({t.__name__ for t in (*MODULE_CONVERTERS, *NEURON_CONVERTERS)} - {"_DropoutNd"})


def find_converter(module: nn.Module) -> Callable[[nn.Module, Shape], Converted] | None:
    if isinstance(module, neuron.BaseNode):
        return NEURON_CONVERTERS.get(type(module))
    for cls in type(module).__mro__:
        if cls in MODULE_CONVERTERS:
            return MODULE_CONVERTERS[cls]
    return None


def _is_leaf(m: nn.Module) -> bool:
    """Every neuron, every convertible layer and every spikingjelly wrapper of a torch layer stays one
    call_module node (an unsupported one is then refused by its name, not by what its forward() does)."""
    return isinstance(m, neuron.BaseNode) or find_converter(m) is not None or _wraps_torch_layer(m)


def _wraps_torch_layer(m: nn.Module) -> bool:
    """A spikingjelly step module built on a torch layer (`layer.Conv1d` on `nn.Conv1d`), not a container."""
    if not isinstance(m, base.StepModule) or isinstance(m, nn.Sequential | nn.ModuleList | nn.ModuleDict):
        return False
    return any(cls.__module__.startswith("torch.nn.modules") and cls is not nn.Module for cls in type(m).__mro__)


def _refuse_whole_sequence(m: nn.Module, path: str) -> None:
    """A multi-step-only module without a converter sees the whole sequence at once; the IR's layers act on
    each step, so it is refused before it is traced (MASNN's attention)."""
    if is_multi_step_only(m) and find_converter(m) is None:
        why = next((text for cls, text in TIME_MIXING.items() if isinstance(m, cls)),
                   "runs only on whole [T, N, ...] sequences (a multi-step-only module), so it may mix time steps")
        raise UnsupportedError(f"'{path}' ({type(m).__name__}) {why}; the IR's layers act on one step at a time",
                               "only per-step layers, neurons and a mean over time can be deployed")


def _why_it_cannot_run(module: nn.Module, path: str, value: torch.Tensor, per_step: bool,
                       lead: Lead) -> ScadeployError | None:
    """The frontend's reason a layer cannot run on the traced value, clearer than the layer's own error:
    a layer on the wrong axes of a sequence, or the IR's shape error (3 channels into a 1-channel conv)."""
    problem = _layout_problem(module, lead, per_step) if lead is Lead.SEQUENCE else None
    if problem:
        return UnsupportedError(f"'{path}' ({type(module).__name__}): {problem}")
    converter = find_converter(module)
    sample = tuple(value.shape[lead.rank:])
    try:
        converted = converter(module, sample) if converter is not None and sample else None
        if converted is not None:
            _shape_of(path, converted[0], converted[1], [sample])
    except ShapeError as exc:
        return exc
    except (UnsupportedError, GraphError):
        pass
    return None


def _own_step_mode(model: nn.Module) -> str:
    """'m' when the model's neurons run multi-step (its forward() may be written for sequences), else 's'."""
    modes = {getattr(m, "step_mode", "s") for m in model.modules() if isinstance(m, neuron.BaseNode)}
    return "m" if "m" in modes else "s"


def trace_model(model: nn.Module, input_shape: Shape, timesteps: int,
                encoding: Encoding = Encoding.DIRECT) -> Graph:
    """Trace `model` (spikingjelly, any step mode) into a verified IR graph.

    Single-step first; when that fails, multi-step (see the module docstring). When both fail, the error
    of the mode the model's own neurons run in is raised: it speaks about the forward() the user wrote.
    """
    input_shape = tuple(input_shape)
    errors: dict[str, ScadeployError] = {}
    for mode in STEP_MODES:
        try:
            return _trace_in_mode(model, input_shape, timesteps, encoding, mode)
        except (UnsupportedError, ShapeError) as exc:
            errors[mode] = exc
    raise errors[_own_step_mode(model)]


def _trace_in_mode(model: nn.Module, input_shape: Shape, timesteps: int, encoding: Encoding, mode: str) -> Graph:
    module = step_mode_copy(model, mode)
    example = example_input(module, input_shape, timesteps, mode)
    explain = functools.partial(_why_it_cannot_run, lead=Lead.FRAME if mode == "s" else Lead.SEQUENCE)
    fx_graph = shape_trace(module, example, mode, LeafPolicy(_is_leaf, _refuse_whole_sequence, explain))
    return _Builder(module, input_shape, timesteps, encoding, mode).build(fx_graph)


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


def _layout_problem(module: nn.Module, lead: Lead, per_step: bool) -> str | None:
    """Why `module` does not act on each step of a value with this lead (multi-step tracing), or None."""
    multi_step = getattr(module, "step_mode", None) == "m"
    if lead is Lead.SEQUENCE:
        if per_step or multi_step or isinstance(module, LAST_AXIS_LAYERS):
            return None
        return ("a single-step layer is applied to a [T, N, ...] sequence (set its step_mode to 'm' or wrap it in "
                "layer.SeqToANNContainer)")
    if isinstance(module, neuron.BaseNode):
        return "a neuron after the mean over time has no time steps to run on"
    if multi_step and not isinstance(module, LAST_AXIS_LAYERS):
        return "a multi-step layer reads the time-averaged [N, ...] value"
    return None


def _label(target: object) -> str:
    """A function call's short name: 'add' for operator.add, x.add_ and x.__iadd__."""
    name = (target if isinstance(target, str) else getattr(target, "__name__", str(target))).strip("_")
    return {"iadd": "add", "imul": "mul", "isub": "sub", "itruediv": "truediv"}.get(name, name)


def _squeezed(shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(d for d in shape if d != 1)


def _holds_tensor(value: object) -> bool:
    if isinstance(value, torch.Tensor):
        return True
    if isinstance(value, tuple | list):
        return any(_holds_tensor(v) for v in value)
    return isinstance(value, dict) and any(_holds_tensor(v) for v in value.values())


class _Builder:
    """One fx graph (traced in `step_mode`) -> IR nodes, collecting every problem on the way.

    fx nodes whose value is not a tensor (a size, a dtype) are Python values of the trace, not IR.
    Each converted value's lead (frame or sequence) is recorded on its fx node (`LEAD`), and its IR
    shape is checked against the concrete per-sample shape the tracer saw.
    """

    def __init__(self, root: nn.Module, input_shape: Shape, timesteps: int, encoding: Encoding,
                 step_mode: str) -> None:
        self.root = root
        self.modules = dict(root.named_modules())
        self.input_shape = input_shape
        self.timesteps = timesteps
        self.encoding = encoding
        self.step_mode = step_mode
        self.nodes: dict[str, Node] = {}
        self.name_of: dict[torch.fx.Node, str] = {}  # fx node -> IR node name (aliases for identities)
        self.problems: list[str] = []
        self.current: torch.fx.Node | None = None
        self.readable: dict[torch.fx.Node, str] = {}
        self.failed: set[torch.fx.Node] = set()  # reported, and so is everything that reads them

    def build(self, fx_graph: torch.fx.Graph) -> Graph:
        for fx_node in fx_graph.nodes:
            self.current = fx_node
            try:
                self.convert(fx_node)
            except UnsupportedError as exc:
                problem = f"{scope_of(fx_node, self.root)}: {exc.message}"
                if problem not in self.problems:
                    self.problems.append(problem)
                self.failed.add(fx_node)
        if self.problems:
            shown = self.problems[:MAX_PROBLEMS]
            more = len(self.problems) - len(shown)
            raise UnsupportedError(
                "the model cannot be converted: " + "; ".join(shown) + (f"; and {more} more" if more else ""),
                f"supported layers: {', '.join(supported_layers())}; functions: element-wise +, *, 1 - x and "
                "x * constant, flatten/view/reshape of a sample to C*H*W features, x.mean(0) over time")
        return verify(Graph(tuple(self.nodes.values()), self.timesteps))

    def emit(self, name: str, op: Op, inputs: tuple[str, ...], attrs: object, params: dict) -> str:
        """Add an IR node. A function call's node is named after the module it is called in ('layer1.0.add')."""
        if self.current is not None and self.current.op in ("call_function", "call_method") \
                and name == self.current.name:
            name = self.readable_name(self.current)
        if name in self.nodes:
            raise UnsupportedError(f"'{name}' is used more than once; shared layers are not supported")
        shapes = [self.nodes[i].shape for i in inputs]
        shape = self.input_shape if op is Op.INPUT else _shape_of(name, op, attrs, shapes)
        self.nodes[name] = Node(name, op, inputs, attrs, shape, params)
        return name

    def readable_name(self, fx_node: torch.fx.Node) -> str:
        if fx_node not in self.readable:
            path, label = enclosing_path(fx_node), _label(fx_node.target)
            base = f"{path}.{label}" if path else label
            name, i = base, 1
            taken = set(self.readable.values())
            while name in self.nodes or name in self.modules or name in taken:
                name, i = f"{base}_{i}", i + 1
            self.readable[fx_node] = name
        return self.readable[fx_node]

    def convert(self, fx_node: torch.fx.Node) -> None:
        sources = [a for a in (*fx_node.args, *fx_node.kwargs.values()) if isinstance(a, torch.fx.Node)]
        if any(a in self.failed for a in sources):
            self.failed.add(fx_node)  # what it reads was already reported
            return
        args = [a for a in sources if isinstance(example_of(a), torch.Tensor)]
        inputs = tuple(self.name_of[a] for a in args)
        value = example_of(fx_node)
        if fx_node.op == "placeholder":
            if any(n.op is Op.INPUT for n in self.nodes.values()):
                raise UnsupportedError("models with more than one input are not supported")
            lead = Lead.FRAME if self.step_mode == "s" else Lead.SEQUENCE
            self.bind(fx_node, self.emit("input", Op.INPUT, (), InputAttrs(self.encoding), {}), lead)
        elif fx_node.op == "get_attr":
            if isinstance(value, torch.Tensor):
                raise UnsupportedError(f"forward() reads the tensor '{fx_node.target}' itself; only layers may "
                                       "hold weights")
        elif fx_node.op == "output":
            if len(inputs) != 1 or len(sources) != 1:
                raise UnsupportedError("forward() must return one tensor")
            self.emit("output", Op.OUTPUT, inputs, OutputAttrs(), {})
        elif isinstance(value, torch.Tensor):
            self.convert_call(fx_node, args, inputs)
        elif _holds_tensor(value):
            raise UnsupportedError(f"'{_label(fx_node.target)}' returns several tensors; each layer or function "
                                   "must return one")
        # else: a Python value of the trace (a size, a dtype), not IR

    def convert_call(self, fx_node: torch.fx.Node, args: list[torch.fx.Node], inputs: tuple[str, ...]) -> None:
        leads = {a.meta[LEAD] for a in args}
        if len(leads) > 1:
            raise UnsupportedError("it combines a [T, N, ...] sequence with a time-averaged [N, ...] value")
        lead = leads.pop() if leads else Lead.FRAME
        if fx_node.op == "call_module":
            name = self.convert_module(fx_node, inputs, lead)
        else:
            name = _convert_function(fx_node, inputs, self.emit)
        if name not in inputs and self.nodes[name].op is Op.MEAN_OVER_TIME and self.step_mode == "m":
            lead = Lead.FRAME
        self.bind(fx_node, name, lead, args)

    def convert_module(self, fx_node: torch.fx.Node, inputs: tuple[str, ...], lead: Lead) -> str:
        module = self.modules[fx_node.target]
        converter = find_converter(module)
        if converter is None:
            raise UnsupportedError(f"not a supported layer ({type(module).__module__}.{type(module).__name__})")
        problem = _layout_problem(module, lead, fx_node.meta.get(PER_STEP, False)) if self.step_mode == "m" else None
        if problem:
            raise UnsupportedError(problem)
        if len(inputs) != 1:
            raise UnsupportedError(f"a layer called with {len(inputs)} tensors; layers take one input")
        converted = converter(module, self.nodes[inputs[0]].shape)
        if converted is None:
            return inputs[0]
        op, attrs, params = converted
        return self.emit(str(fx_node.target), op, inputs, attrs, params)

    def bind(self, fx_node: torch.fx.Node, name: str, lead: Lead, args: Sequence[torch.fx.Node] = ()) -> None:
        """Record the IR node of `fx_node`, after checking its shape against the traced one: equal, or equal
        but for size-1 axes when it is (or reads) a view that inserted or removed them."""
        ir, traced = tuple(self.nodes[name].shape), tuple(example_of(fx_node).shape[lead.rank:])
        viewed = bool(fx_node.meta.get(VIEW)) or any(a.meta.get(VIEW) for a in args)
        if ir != traced and not (viewed and _squeezed(ir) == _squeezed(traced)):
            raise UnsupportedError(f"converted to {self.nodes[name].op.value} of per-sample shape {ir}, but the "
                                   f"model computes {traced}")
        fx_node.meta[VIEW] = ir != traced
        fx_node.meta[LEAD] = lead
        self.name_of[fx_node] = name


# A function converter returns the IR node name for a call_function/call_method node, or None when the
# call is not its kind. Each kind of call has its own converter; the first that answers wins.
FunctionConverter = Callable[[torch.fx.Node, tuple[str, ...], Callable[..., str]], str | None]


def _add(fx_node, inputs, emit) -> str | None:
    target = fx_node.target
    is_add = target in ADD_FUNCTIONS or target in ("add", "add_", "__add__", "__iadd__")
    if is_add and len(inputs) == len(fx_node.args) >= 2 and not fx_node.kwargs:
        return emit(fx_node.name, Op.ADD, inputs, AddAttrs(), {})
    return None


RESHAPE_FUNCTIONS = (torch.flatten, torch.reshape, torch.squeeze, torch.unsqueeze)
RESHAPE_METHODS = frozenset({"flatten", "view", "reshape", "squeeze", "unsqueeze", "contiguous", "clone", "detach"})


def _reshape(fx_node, inputs, emit) -> str | None:
    """flatten / view / reshape / squeeze / unsqueeze, judged by the traced shapes: the lead axes (N, or T and
    N) must stay; a sample that keeps its shape is the same value, one flattened to C*H*W features is a
    channel-major `flatten` (`torch.flatten(x, 1)` of a frame, `x.flatten(2)` of a sequence), and one that only
    gains or loses size-1 axes (`x.unsqueeze(2)` before a `squeeze(2)`) holds the same values in the same order,
    so it stays the same IR value. Any other per-sample shape has no IR layout."""
    target = fx_node.target
    is_reshape = target in RESHAPE_FUNCTIONS or (fx_node.op == "call_method" and target in RESHAPE_METHODS)
    source = fx_node.args[0] if fx_node.args else None
    if not is_reshape or len(inputs) != 1 or not isinstance(source, torch.fx.Node) or LEAD not in source.meta:
        return None
    before, after, lead = example_of(source).shape, example_of(fx_node).shape, source.meta[LEAD]
    label = _label(target)
    if tuple(after[:lead.rank]) != tuple(before[:lead.rank]):
        axes = "batch axis" if lead is Lead.FRAME else "time and batch axes"
        raise UnsupportedError(f"'{label}' reshapes {list(before)} to {list(after)}, which changes the {axes}; "
                               "only each sample may be reshaped")
    sample_in, sample_out = tuple(before[lead.rank:]), tuple(after[lead.rank:])
    if sample_out == sample_in:
        return inputs[0]
    if sample_out == (math.prod(sample_in),):
        return emit(fx_node.name, Op.FLATTEN, inputs, FlattenAttrs(), {})
    if _squeezed(sample_out) == _squeezed(sample_in):  # size-1 axes in or out: the same values in the same order
        fx_node.meta[VIEW] = True
        return inputs[0]
    raise UnsupportedError(f"'{label}' reshapes each sample from {sample_in} to {sample_out}; only flattening a "
                           "sample to its C*H*W features is supported")


def _mean_axes(fx_node) -> tuple[object, bool] | None:
    """(dim, keepdim) of a mean call, or None when it has other arguments (a dtype)."""
    args, kwargs = fx_node.args[1:], dict(fx_node.kwargs)
    dim = args[0] if args else kwargs.pop("dim", None)
    keepdim = args[1] if len(args) > 1 else kwargs.pop("keepdim", False)
    return None if kwargs or len(args) > 2 else (dim, bool(keepdim))


def _time_mean(fx_node, inputs, emit) -> str | None:
    """`x.mean(0)` of a sequence [T, N, ...] is the mean over time (MS-ResNet's head: `self.head(x).mean(0)`);
    of a frame [N, ...] it would average the batch."""
    source = fx_node.args[0] if fx_node.args else None
    axes = _mean_axes(fx_node)
    if _label(fx_node.target) != "mean" or len(inputs) != 1 or not isinstance(source, torch.fx.Node) \
            or axes is None or LEAD not in source.meta:
        return None
    dim, keepdim = axes
    dims = tuple(dim) if isinstance(dim, tuple | list) else (dim,)
    if keepdim or len(dims) != 1 or not isinstance(dims[0], int) or dims[0] % example_of(source).dim() != 0:
        return None
    if source.meta[LEAD] is Lead.FRAME:
        raise UnsupportedError("'mean(0)' of a frame [N, ...] averages over the batch")
    return emit(fx_node.name, Op.MEAN_OVER_TIME, inputs, MeanOverTimeAttrs(), {})


MUL_TARGETS = (operator.mul, operator.imul, torch.mul, torch.multiply, "mul", "mul_", "multiply", "__mul__",
               "__rmul__", "__imul__")
SUB_TARGETS = (operator.sub, torch.sub, torch.subtract, "sub", "subtract", "__sub__")  # sub(1, x)
RSUB_TARGETS = (torch.rsub, "rsub", "__rsub__")  # rsub(x, 1) = 1 - x


def _constant(value: object) -> float | None:
    """A finite Python number as a float; None for anything else (a tensor, a bool, inf)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not torch.isfinite(torch.tensor(value)):
        return None
    return float(value)


def _mul(fx_node, inputs, emit) -> str | None:
    """x * y of two tensors is a product (SEW AND); x * c with a constant number is a scale (OTTT's Scale)."""
    from scadeploy.ir.graph import MulAttrs, ScaleAttrs

    if fx_node.target not in MUL_TARGETS or fx_node.kwargs or len(fx_node.args) != 2:
        return None
    tensors = [a for a in fx_node.args if isinstance(a, torch.fx.Node)]
    if len(tensors) == 2 and len(inputs) == 2:
        return emit(fx_node.name, Op.MUL, inputs, MulAttrs(), {})
    factor = next((_constant(a) for a in fx_node.args if not isinstance(a, torch.fx.Node)), None)
    if len(tensors) == 1 and len(inputs) == 1 and factor is not None:
        return emit(fx_node.name, Op.SCALE, inputs, ScaleAttrs(factor), {})
    return None


def _complement(fx_node, inputs, emit) -> str | None:
    """1 - x (sub(1, x) or rsub(x, 1)), the negated input of SEW's IAND x * (1 - y)."""
    from scadeploy.ir.graph import ComplementAttrs

    if fx_node.kwargs or len(fx_node.args) != 2 or len(inputs) != 1:
        return None
    first, second = fx_node.args
    if fx_node.target in SUB_TARGETS and isinstance(second, torch.fx.Node) and _constant(first) == 1.0:
        return emit(fx_node.name, Op.COMPLEMENT, inputs, ComplementAttrs(), {})
    if fx_node.target in RSUB_TARGETS and isinstance(first, torch.fx.Node) and _constant(second) == 1.0:
        return emit(fx_node.name, Op.COMPLEMENT, inputs, ComplementAttrs(), {})
    return None


FUNCTION_CONVERTERS: list[FunctionConverter] = [_add, _reshape, _time_mean, _mul, _complement]


def _convert_function(fx_node, inputs, emit) -> str:
    for converter in FUNCTION_CONVERTERS:
        name = converter(fx_node, inputs, emit)
        if name is not None:
            return name
    raise UnsupportedError(f"function '{_label(fx_node.target)}' is not supported (called as "
                           f"{_label(fx_node.target)}({_describe_args(fx_node, inputs)}))")


def _describe_args(fx_node: torch.fx.Node, inputs: tuple[str, ...]) -> str:
    """The call's arguments for people: tensors by the IR node they come from, other values as written."""
    tensors = iter(inputs)
    parts = []
    for arg in (*fx_node.args, *fx_node.kwargs.values()):
        if isinstance(arg, torch.fx.Node):
            parts.append(f"'{next(tensors, 'a tensor')}'" if isinstance(example_of(arg), torch.Tensor) else "...")
        else:
            parts.append(repr(arg))
    keys = [""] * len(fx_node.args) + [f"{k}=" for k in fx_node.kwargs]
    return ", ".join(k + p for k, p in zip(keys, parts, strict=True))
