"""Lava backend: IR -> fixed point -> `model.net`, checked against the float reference before it is published.

Lowering: `lava_rewrites` (pooling and identity shortcuts as exact synapse layers) -> `quantize`
(per-layer integer scale) -> `lava_net.lower` (Loihi layers, depths, branch delays) ->
`lava_netx.write_net`. The analog first layer is handled explicitly: the host quantizes each pixel
to an integer graded message `x_int = round(x * 2^p)` (at most `input_bits` bits; p is the largest
power of two that keeps the calibration samples inside), sent to the first synapses at every step
(netx `input_message_bits`); the first layer's scale absorbs 2^p. Pixels that are multiples of 2^-p
(the digits set: k/16) are represented exactly. A sequence input (`[T, N, ...]`, e.g. event-camera
data) is sent step by step: as binary spike events into the first synapses (Loihi's native input,
`input_message_bits` 0, input scale 1) when the calibration samples are all 0/1, else as graded
messages quantized like a frame.

Logits: the readout linear after the time mean is a non-spiking integrator; see `lava_net`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from scadeploy.artifact.layout import LAVA_NET as NET_FILE
from scadeploy.backends.lava.emulator import emulate
from scadeploy.backends.lava.net import FixedNet, lower
from scadeploy.backends.lava.netx import write_net
from scadeploy.backends.lava.quantize import QuantReport, quantize, quantize_problems
from scadeploy.backends.lava.resources import check_fits, plan_resources
from scadeploy.backends.lava.rewrites import rewrite_for_lava, rewrite_problems
from scadeploy.backends.lava.runner import message_bits
from scadeploy.backends.torch_ref import run_graph
from scadeploy.errors import TargetError, UnsupportedError
from scadeploy.ir.agreement import TOLERANCES, Agreement, agreement, compare_logits, count_spikes
from scadeploy.ir.graph import Encoding, Graph, Op
from scadeploy.ir.ops import BackendOps
from scadeploy.targets import Target
from scadeploy.targets.backend_options import LavaOptions

EMULATOR = "lava emulator (backends/lava/emulator.py)"


LAVA_OPS = BackendOps("lava")
"""How each IR op reaches Loihi: through the exact rewrites (`rewrites.py`), quantization and the writer."""
LAVA_OPS.lower(Op.INPUT, "graded messages into the first synapses (frames), or binary spike events")
LAVA_OPS.lower(Op.CONV2D, "Conv synapses (8-bit weights, per-layer scale)")
LAVA_OPS.lower(Op.LINEAR, "Dense synapses; after the time mean, the non-spiking readout integrator")
LAVA_OPS.lower(Op.BATCHNORM, "folded into the conv/linear before it")
LAVA_OPS.lower(Op.NEURON, "CUBA neuron: IF bit-exact, LIF within the bound of `backends/lava/quantize.py`; "
               "soft reset refused")
LAVA_OPS.lower(Op.MAXPOOL, "OR of spikes: depthwise ones conv + threshold-1 neuron (spikes only)")
LAVA_OPS.lower(Op.AVGPOOL, "folded into the conv or flatten->linear that reads it (kernel == stride)")
LAVA_OPS.refuse(Op.ADAPTIVE_AVGPOOL, "it has no fixed window; compile folds it into the flatten -> linear "
                "that reads it, and this one feeds something else")
LAVA_OPS.lower(Op.FLATTEN, "the netx (x, y, f) order of the next dense layer")
LAVA_OPS.lower(Op.ADD, "several synapse paths into one neuron (own Lava process graph; netx chains cannot express it); "
               "a sum of spikes read by weights: the weights distributed over its terms")
LAVA_OPS.lower(Op.MUL, "AND of spikes: +1/+1 identity synapses into a memoryless neuron (threshold 2, full decay); "
               "with a complement, IAND (+1/-1, threshold 1); analog products refused")
LAVA_OPS.lower(Op.COMPLEMENT, "NOT of spikes: -1 identity synapse, bias 1, memoryless neuron (threshold 1); fused "
               "into a product's IAND")
LAVA_OPS.lower(Op.SCALE, "folded into the conv/linear that reads it (refused when something else reads it)")
LAVA_OPS.lower(Op.MEAN_OVER_TIME, "the readout integrator's accumulated current")
LAVA_OPS.lower(Op.OUTPUT, "readout current divided by T")


def lowering_problems(graph: Graph) -> list[str]:
    """Everything the Lava backend cannot express, each with its reason."""
    refused = LAVA_OPS.refusals(graph)
    if refused:
        return refused
    pooling = rewrite_problems(graph)
    if pooling:
        return pooling
    return quantize_problems(rewrite_for_lava(graph))


def lower_graph(graph: Graph, options: LavaOptions, input_max: float = 1.0,
                binary_input: bool = False) -> tuple[FixedNet, QuantReport, Graph]:
    """(fixed-point network, quantization report, quantized IR graph in integer units)."""
    qgraph, report = quantize(rewrite_for_lava(graph), options, input_max, binary_input)
    return lower(qgraph, report), report, qgraph


def is_binary_events(graph: Graph, samples: torch.Tensor) -> bool:
    """A sequence input whose samples are all 0 or 1: sent to Loihi as binary spike events."""
    return graph.input.attrs.encoding is Encoding.SEQUENCE and bool(((samples == 0) | (samples == 1)).all())


def check_supported(graph: Graph, target: Target) -> None:
    """One UnsupportedError listing every problem, or a TargetError when the model does not fit the target."""
    options: LavaOptions = target.options
    problems = lowering_problems(graph)
    if problems:
        raise UnsupportedError("the Lava backend cannot lower the model: " + "; ".join(problems),
                               "supported: conv, linear, IF/LIF with hard reset, max pooling of spikes, average "
                               "pooling with kernel == stride, residual adds into a neuron, one readout linear")
    net, _, _ = lower_graph(graph, options)
    check_fits(plan_resources(net, options.resources))


def export(graph: Graph, target: Target, out_dir: str | Path, samples: torch.Tensor) -> dict:
    """Write `model.net` into `out_dir`; return the manifest section (quantization, resources, parity)."""
    check_supported(graph, target)
    options: LavaOptions = target.options
    input_max = float(samples.abs().max()) if samples.numel() else 1.0
    net, report, qgraph = lower_graph(graph, options, input_max or 1.0, is_binary_events(graph, samples))
    plan = plan_resources(net, options.resources)
    check_fits(plan)
    count = options.parity_samples
    calibration = samples[:, :count] if net.sequence_input else samples[:count]
    parity = checked_parity(measure_parity(graph, qgraph, net, calibration), report)
    write_net(net, Path(out_dir) / NET_FILE)
    return {
        "files": [NET_FILE],
        "netx_loadable": net.is_chain,
        "runner": "lava-dl netx" if net.is_chain else "lava process graph (netx has no residual connections)",
        "timesteps": net.timesteps,
        "latency_steps": net.latency,
        "input": {"kind": "binary spike events" if net.binary_input else "graded messages",
                  "per_step": net.sequence_input, "scale": net.input_scale, "max_int": net.input_max,
                  "message_bits": message_bits(net)},
        "options": asdict(options),
        "quantization": report.to_dict(),
        "resources": plan.to_dict(),
        "parity": parity,
    }


@dataclass(frozen=True)
class LavaParity:
    """The emulator (Lava's arithmetic, bit for bit) against the integer graph it must reproduce, and
    against the float reference (quantization error: reported, not judged)."""

    integer: Agreement
    vs_float: Agreement

    def to_dict(self) -> dict:
        return {"samples": self.integer.samples, "emulator_vs_quantized_ir": self.integer.to_dict(),
                "emulator_vs_float": self.vs_float.to_dict()}


def checked_parity(parity: LavaParity, report: QuantReport) -> dict:
    """The manifest's parity with the `exact` verdict: true only when every layer is exact by construction (IF)
    AND the emulator reproduced the integer graph with 0 mismatches. A network that should be exact but is
    not fails the compile: its integer graph is not what Lava computes."""
    measured = parity.integer
    by_construction = all(q.exact for q in report.layers.values())
    if by_construction and not measured.passed:
        raise TargetError(f"fixed point is not exact: Lava's arithmetic (the emulator) differs from the integer "
                          f"graph in {measured.spike_mismatches} of {measured.spikes_compared} spikes "
                          f"(max |logit diff| {measured.max_logit_diff:.3g}) on {measured.samples} samples, "
                          "so a 24-bit state bound does not hold",
                          "keep the target's state_bits at 24 (Lava's u and v), or report the model as a bug")
    approximate = [name for name, q in report.layers.items() if not q.exact]
    return parity.to_dict() | {"exact": by_construction and bool(measured.passed), "approximate_layers": approximate}


def measure_parity(graph: Graph, qgraph: Graph, net: FixedNet, x: torch.Tensor) -> LavaParity:
    """Emulator vs the quantized IR (exact for IF) and vs the float reference, on real inputs."""
    emu = emulate(net, x)
    q = run_graph(qgraph, emu.x_int.to(torch.float64), record=True, dtype=torch.float64)
    ref = run_graph(graph, x, record=True, dtype=torch.float64)
    q_logits = q.logits / net.readout_scale if net.has_readout else q.logits
    # NOTE: emulator and integer-graph logits are the same integers decoded in two float orders.
    integer = agreement("quantized IR (torch_ref, integer units)", EMULATOR, "fixed point",
                        compare_logits(q_logits, emu.logits), TOLERANCES.exact, count_spikes(q.spikes, emu.spikes))
    vs_float = agreement("torch_ref (f64)", EMULATOR, "fixed point", compare_logits(ref.logits, emu.logits), None,
                         count_spikes(ref.spikes, emu.spikes))
    return LavaParity(integer, vs_float)
