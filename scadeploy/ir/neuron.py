"""The neuron equations of the IR, in one place: every executor, analysis and lowering follows them.

Per step t, from the initial state v[-1] = v_reset (0 for soft reset), on input x[t]:

    charge  IF:  h = v + x
            LIF: h = v + (x - (v - v_reset)) / tau       (decay_input)
                 h = v - (v - v_reset) / tau + x          (not decay_input)
    fire    s = 1 if h - v_threshold >= 0 else 0          (spikingjelly's `>=`)
    reset   hard: v = v_reset where s else h;  soft (v_reset None): v = h - s * v_threshold

These are spikingjelly 2.0's equations with its float operations in its order, so a float32 run
matches spikingjelly bit for bit. The torch reference, silence certification, SCA's activity
replay and the ONNX lowering (`backends/onnx/ops.py`, which emits the same operations in the
same order) all use them; the Lava lowering maps them to Loihi's integer CUBA neuron.
Functions work on torch tensors of any float dtype and shape (element-wise).
"""

from __future__ import annotations

import torch

from scadeploy.ir.graph import NeuronAttrs, NeuronKind


def memoryless(v_threshold: float) -> NeuronAttrs:
    """A neuron without memory: LIF with tau 1, no input decay, reset 0, so h = v - (v - 0) / 1 + x = x
    exactly (v - v is 0 in any float) and it fires iff x >= v_threshold, whatever came before.
    Spike logic uses it (`ir/passes/spike_logic.py`); Loihi expresses it as full voltage decay."""
    return NeuronAttrs(NeuronKind.LIF, float(v_threshold), 0.0, tau=1.0, decay_input=False)


def is_memoryless(a: NeuronAttrs) -> bool:
    """True for the neurons `memoryless` builds (any threshold)."""
    return a.kind is NeuronKind.LIF and a.tau == 1.0 and not a.decay_input and a.v_reset == 0.0


def initial_potential(a: NeuronAttrs, like: torch.Tensor) -> torch.Tensor:
    """The state before the first step: v_reset (0 for soft reset), shaped like `like`."""
    return torch.full_like(like, 0.0 if a.v_reset is None else a.v_reset)


def neuron_charge(a: NeuronAttrs, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """The charge equation: the membrane potential h before firing."""
    v_reset = 0.0 if a.v_reset is None else a.v_reset
    if a.kind is NeuronKind.IF:
        return v + x
    if a.decay_input:
        return v + (x - (v - v_reset)) / a.tau
    return v - (v - v_reset) / a.tau + x


def neuron_fire_reset(a: NeuronAttrs, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Fire on `h - v_threshold >= 0`, then reset; returns (spike, new v)."""
    spike = (h - a.v_threshold >= 0).to(h.dtype)
    if a.v_reset is None:
        return spike, h - spike * a.v_threshold
    return spike, spike * a.v_reset + (1.0 - spike) * h


def neuron_step(a: NeuronAttrs, x: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One step (charge, fire, reset); returns (spike, new v)."""
    return neuron_fire_reset(a, neuron_charge(a, x, v))


def run_neuron(a: NeuronAttrs, x_seq: torch.Tensor) -> torch.Tensor:
    """Multi-step neuron on `[T, ...]` from the initial state; returns spikes `[T, ...]`."""
    v = initial_potential(a, x_seq[0])
    spikes = []
    for x in x_seq:
        s, v = neuron_step(a, x, v)
        spikes.append(s)
    return torch.stack(spikes)
