"""quantize: integer weights, biases, thresholds and decays for Loihi CUBA neurons, one scale per layer.

Requires: a verified, BN-folded graph whose pooling and identity shortcuts are rewritten
(`scadeploy.backends.lava.rewrites`): each neuron reads a conv/linear or an add of them; each
conv/linear reads a neuron or the input (through flatten/mean_over_time); after mean_over_time
comes at most the readout: one linear, or an add of linears (a readout whose input was a sum of
spike maps, see `ir/passes/distribute_sums.py`), then the output.
Ensures: `(graph, report)`. The graph is the same network in integer units, runnable by torch_ref:
its input takes `x_int = round(x * input_scale)`, weights and biases are integers, and each neuron
layer has threshold T. The report holds the Loihi parameters (vThMant, iDecay, vDecay) per layer.

Why one scale per layer: Loihi's threshold and decays are per population, so a layer's weights,
bias and threshold share one scale S (integer = round(float * S)). S is the largest value with theta * S
= T an integer whose rounded parameters keep |w| <= 2^weight_bits - 2, |bias| <= 2^(bias_bits-1) - 1,
vThMant < 2^threshold_bits and the state inside 24 bits (`state_bounds`, on the rounded integers):
one step's synaptic input (u = a << 6), the threshold plus one step's input and bias (v from above),
and T steps of negative input and bias (v from below: an IF neuron never leaks it away). A layer
that is integral already (the OR layers of max pooling) keeps S = 1.

Neurons (theta' = v_threshold - v_reset: shifting v by v_reset turns reset-to-r into reset-to-0):
- IF: iDecay 4096 (no synaptic memory), vDecay 0, vThMant = T - 1. Lava's v is a multiple of 64,
  so `v > (T-1) << 6` is exactly spikingjelly's `V >= T`: bit-exact while v stays inside 24 bits.
- memoryless (LIF with tau 1, the spike-logic neurons of `spike_logic.py`): h = x in exact arithmetic,
  so it is the IF layer with vDecay 4096 (v * (4096 - 4096) >> 12 is 0: no truncation), vThMant = T - 1,
  and its state holds one step's input only. Bit-exact.
- LIF: weights and bias times 1/tau when decay_input, vDecay = round(4096/tau), vThMant = T. Not exact:
  Lava truncates the decayed v toward zero (< 1/64 weight LSB per step, accumulating to at most
  64/vDecay LSB), the decay is rounded to 1/4096, and `v > T << 6` misses the tie V == T.
- soft reset (v_reset=None) has no Loihi equivalent (v resets to 0) and is rejected.
The readout linear (after mean_over_time) becomes a non-spiking integrator (iDecay 0, vDecay 4096):
its weights are scaled so that T steps of input stay inside the 24-bit current; its bias stays float
and is added on the host. A sum of readout linears is one integrator with one synapse path per linear,
their weights sharing one scale (bounded together) and their biases summed.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch

from scadeploy.errors import UnsupportedError
from scadeploy.ir.graph import Graph, NeuronAttrs, NeuronKind, Node, Op
from scadeploy.ir.neuron import memoryless
from scadeploy.ir.ops import PRODUCER_OPS
from scadeploy.ir.verify import verify
from scadeploy.targets.backend_options import LavaOptions
from scadeploy.targets.lava_limits import DECAY_ONE, MANT_UNIT

THROUGH = (Op.FLATTEN, Op.MEAN_OVER_TIME)


@dataclass(frozen=True)
class LayerQuant:
    """One layer's fixed-point parameters. `scale` maps float potential to integer units."""

    name: str
    producers: tuple[str, ...]
    scale: float
    threshold: int | None
    vth_mant: int | None
    i_decay: int
    v_decay: int
    exact: bool
    note: str = ""

    def to_dict(self) -> dict:
        """`exact` is only a claim of the construction; the measured verdict is the Lava parity's `exact`."""
        fields_ = asdict(self)
        fields_["exact_by_construction"] = fields_.pop("exact")
        return fields_ | {"producers": list(self.producers)}


@dataclass(frozen=True)
class QuantReport:
    input_scale: float  # x_int = round(x * input_scale), clipped to +-input_max
    input_max: int
    layers: dict[str, LayerQuant]
    readout: str | None  # the readout linear, or None when the logits are spike rates

    def to_dict(self) -> dict:
        return {"input_scale": self.input_scale, "input_max": self.input_max, "readout": self.readout,
                "layers": [q.to_dict() for q in self.layers.values()]}


def source_of(graph: Graph, name: str) -> Node:
    """The neuron or input behind `name`, looking through flatten and mean_over_time."""
    node = graph[name]
    while node.op in THROUGH:
        node = graph[node.inputs[0]]
    return node


def synapses_of(graph: Graph, neuron: Node) -> list[Node]:
    """The conv/linear nodes whose sum drives `neuron` (directly or through one add)."""
    node = graph[neuron.inputs[0]]
    return [graph[i] for i in node.inputs] if node.op is Op.ADD else [node]


@dataclass(frozen=True)
class Readout:
    """The non-spiking integrator: `head` (what the output reads) sums the `linears` after the time mean."""

    head: Node
    linears: tuple[Node, ...]

    @property
    def names(self) -> set[str]:
        return {self.head.name, *(n.name for n in self.linears)}


def _after_mean(graph: Graph, node: Node) -> bool:
    source = graph[node.inputs[0]]
    while source.op is Op.FLATTEN:
        source = graph[source.inputs[0]]
    return source.op is Op.MEAN_OVER_TIME


def readout_of(graph: Graph) -> Readout | None:
    """The readout: the linear the output reads (through flatten) after mean_over_time, or an add of such."""
    head = graph[graph.output.inputs[0]]
    while head.op is Op.FLATTEN:
        head = graph[head.inputs[0]]
    linears = tuple(graph[i] for i in head.inputs) if head.op is Op.ADD else (head,)
    if all(n.op is Op.LINEAR and _after_mean(graph, n) for n in linears):
        return Readout(head, linears)
    return None


def quantize_problems(graph: Graph) -> list[str]:
    """Everything this pass cannot express, one readable line each."""
    problems = []
    readout = readout_of(graph)
    allowed = readout.names if readout else set()
    for node in graph.nodes:
        where = f"'{node.name}'"
        if node.op in (Op.BATCHNORM, Op.MAXPOOL, Op.AVGPOOL):
            problems.append(f"{node.op.value} {where} must be folded or rewritten before quantization")
        elif node.op is Op.NEURON:
            problems += _neuron_problems(graph, node)
        elif node.op in PRODUCER_OPS:
            problems += _producer_problems(graph, node, readout)
        elif node.op is Op.ADD and node.name not in allowed and any(c.op is not Op.NEURON
                                                                      for c in graph.consumers(node.name)):
            problems.append(f"add {where} must feed neurons only (Loihi sums synaptic input into a neuron)")
    for mean in graph.of_op(Op.MEAN_OVER_TIME):
        tail = [n for n in graph.downstream(mean.name) if n.op is not Op.OUTPUT]
        if any(n.op is not Op.FLATTEN and n.name not in allowed for n in tail):
            problems.append(f"after mean_over_time '{mean.name}' only a linear readout (or a sum of them) is "
                            f"supported, got {[n.op.value for n in tail]}")
    return problems


def _producer_problems(graph: Graph, node: Node, readout: Readout | None) -> list[str]:
    where = f"'{node.name}'"
    source = source_of(graph, node.inputs[0])
    problems = []
    if source.op not in (Op.NEURON, Op.INPUT):
        problems.append(f"{where} reads {source.op.value} output, not spikes or the input (two weight layers "
                        "need a neuron between them)")
    readers = {c.op.value for c in graph.consumers(node.name) if c.op not in (Op.NEURON, Op.ADD)}
    if readers and (readout is None or node.name not in readout.names):
        problems.append(f"{where} feeds {sorted(readers)}: weights must drive neurons, or be the one readout "
                        "linear after mean_over_time")
    return problems


def _neuron_problems(graph: Graph, node: Node) -> list[str]:
    a: NeuronAttrs = node.attrs
    where = f"neuron '{node.name}'"
    if a.v_reset is None:
        return [f"{where} uses soft reset (v_reset=None), which Loihi cannot express: its neurons reset v to 0 "
                "(retrain with a hard reset, e.g. v_reset=0)"]
    problems = []
    if a.v_threshold - a.v_reset <= 0:
        problems.append(f"{where} has v_threshold <= v_reset, so it fires without input")
    if any(s.op not in PRODUCER_OPS for s in synapses_of(graph, node)):
        problems.append(f"{where} must read a conv/linear or an add of them")
    return problems


def quantize(graph: Graph, options: LavaOptions | None = None, input_max: float = 1.0,
             binary_input: bool = False) -> tuple[Graph, QuantReport]:
    """Quantize every layer (see module docstring); `input_max` is the largest |input| to represent.

    `binary_input`: the input is 0/1 spike events (input_scale 1, input_max 1), sent as binary spikes.
    """
    options = options or LavaOptions()
    problems = quantize_problems(graph)
    if problems:
        raise UnsupportedError("cannot quantize the model: " + "; ".join(problems))
    if binary_input:
        input_scale, input_max, input_limit = 1.0, 1.0, 1
    else:
        input_scale = 2.0 ** math.floor(math.log2(options.input_max / max(float(input_max), 1e-12)))
        input_limit = options.input_max
    replaced: dict[str, Node] = {}
    layers: dict[str, LayerQuant] = {}
    for neuron in graph.of_op(Op.NEURON):
        quant, nodes = _quantize_neuron(graph, neuron, options, input_scale, input_max)
        layers[quant.name] = quant
        replaced.update(nodes)
    readout = readout_of(graph)
    if readout is not None:
        quant, nodes = _quantize_readout(graph, readout, options)
        layers[quant.name] = quant
        replaced.update(nodes)
    qgraph = verify(graph.with_nodes([replaced.get(n.name, n) for n in graph.nodes]))
    return qgraph, QuantReport(input_scale, input_limit, layers, readout.head.name if readout else None)


def _input_terms(graph: Graph, producer: Node, input_scale: float, input_max: float) -> tuple[float, float]:
    """(scale of the producer's integer input, largest |integer input|): graded pixels or 0/1 spikes."""
    if source_of(graph, producer.inputs[0]).op is Op.INPUT:
        return input_scale, input_max * input_scale
    return 1.0, 1.0


def _row_sums(weight: torch.Tensor) -> torch.Tensor:
    return weight.abs().reshape(weight.shape[0], -1).sum(1)


@dataclass
class _Synapses:
    """One neuron layer's float parameters in integer-input units, ready to be scaled."""

    weights: dict[str, torch.Tensor]
    biases: dict[str, torch.Tensor | None]
    magnitudes: dict[str, float]  # largest |integer input| per producer
    spikes: dict[str, bool]  # the producer reads 0/1 spikes (else signed graded input)
    rows: torch.Tensor  # float sum |w| * magnitude per output channel, unscaled


def _quantize_neuron(graph: Graph, neuron: Node, opt: LavaOptions, input_scale: float,
                     input_max: float) -> tuple[LayerQuant, dict[str, Node]]:
    a: NeuronAttrs = neuron.attrs
    memory_free = a.kind is NeuronKind.LIF and a.tau == 1.0  # h = x: exact, like IF (module docstring)
    lif = a.kind is NeuronKind.LIF and not memory_free
    fold = 1.0 / a.tau if lif and a.decay_input else 1.0
    theta = a.v_threshold - a.v_reset
    producers = synapses_of(graph, neuron)
    syn = _Synapses({}, {}, {}, {}, torch.zeros(1, dtype=torch.float64))
    for p in producers:
        in_scale, magnitude = _input_terms(graph, p, input_scale, input_max)
        syn.weights[p.name] = p.params["weight"].double() * fold / in_scale
        syn.biases[p.name] = p.params["bias"].double() * fold if "bias" in p.params else None
        syn.magnitudes[p.name] = magnitude
        syn.spikes[p.name] = source_of(graph, p.inputs[0]).op is Op.NEURON
        syn.rows = syn.rows + _row_sums(syn.weights[p.name]) * magnitude
    vth_limit = opt.vth_max if lif else opt.vth_max + 1
    steps = 1 if memory_free else graph.timesteps  # how many steps of input v can accumulate
    if _integral(syn.weights, syn.biases, theta) and not _violations(1.0, syn, theta, opt, vth_limit, steps):
        scale, lowered = 1.0, ""
    else:
        scale, lowered = _largest_scale(neuron.name, syn, theta, opt, vth_limit, steps)
    threshold = round(theta * scale)
    new_nodes = {p.name: _integer_producer(p, syn.weights[p.name], syn.biases[p.name], scale) for p in producers}
    if lif:
        v_decay = round(DECAY_ONE / a.tau)
        tau = DECAY_ONE / v_decay if v_decay else math.inf
        attrs = NeuronAttrs(NeuronKind.LIF, float(threshold), 0.0, tau, decay_input=False)
        quant = LayerQuant(neuron.name, tuple(new_nodes), scale, threshold, threshold, DECAY_ONE, v_decay, False,
                           f"LIF: |v error| <= {MANT_UNIT / max(v_decay, 1):.3g} weight LSB from truncation, decay "
                           f"{v_decay}/4096 for 1/tau={1 / a.tau:.6g}, ties V == T not fired" + lowered)
    elif memory_free:
        quant = LayerQuant(neuron.name, tuple(new_nodes), scale, threshold, threshold - 1, DECAY_ONE, DECAY_ONE,
                           True, "memoryless: exact (full decay; v > (T-1) << 6 on multiples of 64 is V >= T)"
                           + lowered)
        attrs = memoryless(threshold)
    else:
        attrs = NeuronAttrs(NeuronKind.IF, float(threshold), 0.0)
        quant = LayerQuant(neuron.name, tuple(new_nodes), scale, threshold, threshold - 1, DECAY_ONE, 0, True,
                           "IF: exact (v > (T-1) << 6 on multiples of 64 is V >= T)" + lowered)
    return quant, new_nodes | {neuron.name: neuron.with_(attrs=attrs)}


def _integral(weights: dict, biases: dict, theta: float) -> bool:
    tensors = list(weights.values()) + [b for b in biases.values() if b is not None]
    return float(theta).is_integer() and all(bool((t == t.round()).all()) for t in tensors)


def state_bounds(scale: float, syn: _Synapses, threshold: int, timesteps: int) -> dict[str, int]:
    """Worst-case integer magnitudes (in weight units; Lava holds them << 6 in 24 bits) of the rounded layer.

    NOTE: bounds use the rounded weights sum |round(w * S)|, not sum |w| * S: with many inputs the
    rounding alone can add more than the threshold. `v` is bounded over all T steps: an IF neuron
    (no leak) sums negative input every step, and Lava clips v at -(2^23 - 1) where the integer
    graph keeps going. Above, v stays below threshold + one step's input (it resets when it fires).
    """
    up = down = 0
    bias = torch.zeros(1, dtype=torch.float64)
    for name, weight in syn.weights.items():
        w = torch.round(weight * scale).reshape(weight.shape[0], -1)
        if syn.spikes[name]:  # 0/1 inputs: only the positive (negative) weights can add up
            up, down = up + w.clamp(min=0).sum(1), down - w.clamp(max=0).sum(1)
        else:
            row = w.abs().sum(1) * syn.magnitudes[name]
            up, down = up + row, down + row
        if syn.biases[name] is not None:
            bias = bias + torch.round(syn.biases[name] * scale)
    synaptic = torch.maximum(torch.as_tensor(up), torch.as_tensor(down))
    return {"synaptic input": int(synaptic.max()),
            "v above": int((threshold + up + bias.clamp(min=0)).max()),
            "v below over T steps": int((timesteps * (down - bias.clamp(max=0))).max())}


def _violations(scale: float, syn: _Synapses, theta: float, opt: LavaOptions, vth_limit: int,
                timesteps: int) -> list[str]:
    """The limits that the layer's rounded integer parameters at `scale` break."""
    w_max = max(float(torch.round(w * scale).abs().max()) for w in syn.weights.values())
    b_max = max((float(torch.round(b * scale).abs().max()) for b in syn.biases.values() if b is not None), default=0)
    threshold = round(theta * scale)
    broken = [name for name, bad in (("weights", w_max > opt.weight_max), ("bias", b_max > opt.bias_max),
                                     ("threshold", threshold > vth_limit)) if bad]
    bounds = state_bounds(scale, syn, threshold, timesteps)
    return broken + [f"24-bit state ({k})" for k, v in bounds.items() if v > opt.activation_max]


def _largest_scale(layer: str, syn: _Synapses, theta: float, opt: LavaOptions, vth_limit: int,
                   timesteps: int) -> tuple[float, str]:
    """The largest S whose rounded parameters meet every limit, with theta * S an integer T >= 1;
    and a note when the exact integer bounds forced S below the float estimate."""
    w_max = max(float(w.abs().max()) for w in syn.weights.values())
    b_max = max((float(b.abs().max()) for b in syn.biases.values() if b is not None), default=0.0)
    limits = {"weights": opt.weight_max / w_max if w_max else math.inf,
              "bias": opt.bias_max / b_max if b_max else math.inf,
              "threshold": vth_limit / theta,
              "24-bit state": opt.activation_max / (float(syn.rows.max()) + theta)}
    estimate = min(limits.values())
    threshold = math.floor(theta * estimate * (1 + 1e-12)) if math.isfinite(estimate) else 0
    broken = [min(limits, key=limits.get)]
    while threshold >= 1:
        broken = _violations(threshold / theta, syn, theta, opt, vth_limit, timesteps)
        if not broken:
            break
        # NOTE: shrink in proportion to the worst state overshoot, and by at least one threshold unit.
        bounds = state_bounds(threshold / theta, syn, threshold, timesteps)
        ratio = min(1.0, opt.activation_max / max(max(bounds.values()), 1))
        threshold = min(threshold - 1, math.floor(threshold * ratio))
    if threshold < 1:
        raise UnsupportedError(f"layer '{layer}' cannot be quantized: its {', '.join(broken)} limit leaves a "
                               f"threshold below 1 (theta={theta:.4g}, scale={estimate:.4g})",
                               "retrain with smaller biases or fan-in, or raise the bit widths in the target")
    scale = threshold / theta
    first = math.floor(theta * estimate * (1 + 1e-12)) / theta
    note = "" if scale >= first else (f"; scale lowered {first / scale:.4g}x (from {first:.6g}) to keep the rounded "
                                      f"integer state inside {opt.state_bits} bits over {timesteps} steps")
    return scale, note


def _integer_producer(p: Node, weight: torch.Tensor, bias: torch.Tensor | None, scale: float) -> Node:
    params = {"weight": torch.round(weight * scale).float()}
    if bias is not None:
        params["bias"] = torch.round(bias * scale).float()
    return p.with_(params=params)


def _quantize_readout(graph: Graph, readout: Readout, opt: LavaOptions) -> tuple[LayerQuant, dict[str, Node]]:
    """Integrator over T steps: T * (row sum of the rounded |w_int|, over every readout linear) must stay
    inside the 24-bit current; the linears share one scale."""
    weight = torch.cat([n.params["weight"].double() for n in readout.linears], dim=1)  # one synapse row each
    w_max = float(weight.abs().max())
    rows = float(_row_sums(weight).max())
    T = graph.timesteps
    scale = min(opt.weight_max / w_max if w_max else math.inf,
                opt.activation_max / (T * rows) if rows else math.inf)
    if not math.isfinite(scale):
        scale = 1.0
    # NOTE: the float bound T * sum|w| * S can be beaten by rounding; lower S until the integers fit.
    while T * float(_row_sums(torch.round(weight * scale)).max()) > opt.activation_max:
        scale *= opt.activation_max / (T * float(_row_sums(torch.round(weight * scale)).max())) * (1 - 1e-9)
    nodes = {}
    for linear in readout.linears:
        params = {"weight": torch.round(linear.params["weight"].double() * scale).float()}
        if "bias" in linear.params:
            params["bias"] = linear.params["bias"].double().mul(scale).float()
        nodes[linear.name] = linear.with_(params=params)
    quant = LayerQuant(readout.head.name, tuple(nodes), scale, None, None, 0, DECAY_ONE, True,
                       "readout: non-spiking integrator; logits = sum_t a_t / (T * scale) + bias (host)")
    return quant, nodes
