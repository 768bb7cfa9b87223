"""A torch emulator of Lava's CUBA fixed_pt arithmetic, bit for bit, batched over whole test sets.

It reproduces, per step and layer (lava `proc/lif/models.py::AbstractPyLifModelFixed`, `proc/conv`,
`proc/dense`):
    a = sum over edges of W_int . s_src            conv: wrapped to signed 24 bits (signed_clamp)
    u = trunc0(u * (4096 - iDecay) / 2^12) + (a << 6)      wrapped once at +-2^23, as Lava does
    v = trunc0(v * (4096 - vDecay) / 2^12) + u + (bias << 6), clipped to +-(2^23 - 1)
    s = v > (vth << 6);  v[s] = 0                   strict `>`; u is not reset
It runs in logical time (frame t of every layer at step t): Lava's one step of latency per synapse
is a pure shift, because the runner resets each layer when the first frame of a sample reaches it.
Synaptic sums are computed by float convolutions that are exact for these integer bounds (float32
below 2^24, float64 otherwise).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from scadeploy.backends.lava.net import INPUT, Edge, FixedNet, Layer
from scadeploy.targets.lava_limits import DECAY_ONE, MANT_UNIT, STATE_WRAP


@dataclass
class SimResult:
    """Logits `[N, K]`, spikes per layer `[T, N, *shape]` (uint8, when recorded), integer input frames."""

    logits: torch.Tensor
    spikes: dict[str, torch.Tensor] = field(default_factory=dict)
    x_int: torch.Tensor | None = None
    seconds: float = 0.0
    steps: int = 0


def trunc_decay(x: torch.Tensor, decay: int) -> torch.Tensor:
    """sign(x * (4096 - decay)) * (|x * (4096 - decay)| >> 12): Lava's decay, truncated toward zero."""
    return torch.div(x * (DECAY_ONE - decay), DECAY_ONE, rounding_mode="trunc")


def wrap_current(u: torch.Tensor) -> torch.Tensor:
    """Lava's single wrap of u into (-2^23, 2^23]."""
    wrapped = torch.where(u > STATE_WRAP, u - 2 * STATE_WRAP, u)
    return torch.where(wrapped <= -STATE_WRAP, u + 2 * STATE_WRAP, wrapped)


def signed_clamp24(x: torch.Tensor) -> torch.Tensor:
    return torch.remainder(x + STATE_WRAP, 2 * STATE_WRAP) - STATE_WRAP


class _Synapse:
    """One edge as a torch op on integer inputs; float dtype chosen so every partial sum is exact."""

    def __init__(self, edge: Edge, input_max: int, device: torch.device) -> None:
        self.edge = edge
        bound = float(np.abs(edge.weight).reshape(edge.weight.shape[0], -1).sum(1).max()) * input_max
        self.dtype = torch.float32 if bound < 2**24 else torch.float64
        self.weight = torch.from_numpy(edge.weight).to(device=device, dtype=self.dtype)

    def __call__(self, s: torch.Tensor) -> torch.Tensor:
        e = self.edge
        s = s.to(self.dtype)
        if e.is_conv:
            a = F.conv2d(s, self.weight, None, e.stride, e.padding, e.dilation, e.groups)
            return signed_clamp24(a.round().to(torch.int64))
        if e.flatten:
            s = s.flatten(1)
        return F.linear(s, self.weight).round().to(torch.int64)


class _Neuron:
    def __init__(self, layer: Layer, device: torch.device) -> None:
        self.layer = layer
        shape = (-1, 1, 1) if len(layer.shape) == 3 else (-1,)
        self.bias = torch.from_numpy(layer.bias).to(device=device, dtype=torch.int64).reshape(shape) * MANT_UNIT
        self.u: torch.Tensor | None = None
        self.v: torch.Tensor | None = None

    def reset(self, batch: int) -> None:
        self.u = torch.zeros(batch, *self.layer.shape, dtype=torch.int64, device=self.bias.device)
        self.v = torch.zeros_like(self.u)

    def step(self, a: torch.Tensor) -> torch.Tensor:
        layer = self.layer
        self.u = wrap_current(trunc_decay(self.u, layer.i_decay) + a * MANT_UNIT)
        v = trunc_decay(self.v, layer.v_decay) + self.u + self.bias
        v = v.clamp(-(STATE_WRAP - 1), STATE_WRAP - 1)
        if not layer.spiking:
            self.v = v
            return torch.zeros_like(v, dtype=torch.uint8)
        spikes = v > layer.vth * MANT_UNIT
        self.v = torch.where(spikes, torch.zeros_like(v), v)
        return spikes.to(torch.uint8)


@contextmanager
def exact_gpu_arithmetic() -> Iterator[None]:
    """TF32 off and deterministic cuDNN algorithms while the emulator runs (restored afterwards).

    NOTE: the synaptic sums are float convolutions that are exact only in full float32 (or float64):
    TF32, which cuDNN uses for float32 convolutions by default on Ampere and later GPUs, rounds their
    inputs to 10 mantissa bits. Deterministic algorithms keep every run's summation order the same.
    On the CPU these flags change nothing.
    """
    cuda, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
    saved = (cuda.allow_tf32, cudnn.allow_tf32, cudnn.deterministic, cudnn.benchmark)
    cuda.allow_tf32, cudnn.allow_tf32, cudnn.deterministic, cudnn.benchmark = False, False, True, False
    try:
        yield
    finally:
        cuda.allow_tf32, cudnn.allow_tf32, cudnn.deterministic, cudnn.benchmark = saved


def emulate(net: FixedNet, x: torch.Tensor, *, record: bool = True, batch_size: int = 512, device: str = "cpu",
            progress: Callable[[int], None] | None = None) -> SimResult:
    """Run `x` through the fixed-point network: frames `[N, *input_shape]` (direct encoding, shown at
    every step) or, for a sequence-input network, `[T, N, *input_shape]` (one input per step).

    `device` ("cpu" or "cuda[:i]") is where the batches run; results come back on the CPU.
    """
    where = torch.device(device)
    synapses = {(layer.name, i): _Synapse(e, net.input_max if e.source == INPUT else 1, where)
                for layer in net.layers for i, e in enumerate(layer.edges)}
    x_int = torch.from_numpy(net.quantize_input(x.detach().cpu().numpy()))
    logits, spikes = [], {layer.name: [] for layer in net.layers if layer.spiking}
    samples = net.samples_in(x_int)
    for start in range(0, samples, batch_size):
        batch = x_int[:, start:start + batch_size] if net.sequence_input else x_int[start:start + batch_size]
        with exact_gpu_arithmetic():
            batch_logits, batch_spikes = _run_batch(net, synapses, batch.to(where), record, where)
        logits.append(batch_logits.cpu())
        for name, s in batch_spikes.items():
            spikes[name].append(s.cpu())
        if progress is not None:
            progress(batch_logits.shape[0])
    merged = {name: torch.cat(parts, 1) for name, parts in spikes.items()} if record else {}
    return SimResult(torch.cat(logits), merged, x_int, steps=net.timesteps * samples)


def _run_batch(net: FixedNet, synapses: dict, x_int: torch.Tensor, record: bool,
               device: torch.device) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    neurons = [_Neuron(layer, device) for layer in net.layers]
    for n in neurons:
        n.reset(net.samples_in(x_int))
    kept = {layer.name for layer in net.layers if layer.spiking and (record or layer.name == net.output)}
    recorded: dict[str, list[torch.Tensor]] = {name: [] for name in kept}
    for t in range(net.timesteps):
        current = {INPUT: x_int[t] if net.sequence_input else x_int}
        for neuron in neurons:
            layer = neuron.layer
            a = sum(synapses[(layer.name, i)](current[e.source]) for i, e in enumerate(layer.edges))
            current[layer.name] = neuron.step(a)
            if layer.name in kept:
                recorded[layer.name].append(current[layer.name])
    stacked = {name: torch.stack(s) for name, s in recorded.items()}
    out = next(n for n in neurons if n.layer.name == net.output)
    logits = decode_logits(net, out.u, stacked.get(net.output))
    return logits, stacked if record else {}


def decode_logits(net: FixedNet, u_out: torch.Tensor, out_spikes: torch.Tensor | None) -> torch.Tensor:
    """Readout current u (= 64 * sum_t a_t) -> float logits; or spike rates when there is no readout."""
    if net.has_readout:
        acc = u_out.to(torch.float64) / MANT_UNIT
        bias = torch.from_numpy(net.readout_bias).to(acc.device) if net.readout_bias.size else 0.0
        return acc / (net.timesteps * net.readout_scale) + bias
    if out_spikes is None:
        raise ValueError("spike-rate logits need the output layer's spikes recorded")
    return out_spikes.to(torch.float64).mean(0).flatten(1)
