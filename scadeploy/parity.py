"""Measured agreement between two executions of a model: the evidence every lowering must produce."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from scadeploy.backends.torch_ref import run_graph
from scadeploy.ir.graph import Graph


@dataclass(frozen=True)
class StripParity:
    """Masked vs stripped graph on the same inputs, in float64 (no summation-order ties) and in float32
    (the arithmetic the runtimes use: a channel silent in float64 may fire in float32)."""

    samples: int
    spikes_compared: int
    spike_mismatches: int  # float64 runs
    removed_channel_spikes: int  # spikes the masked model emitted in removed channels, float64 or float32 (must be 0)
    max_logit_diff_f64: float
    max_logit_diff_f32: float
    class_agreement_f32: float
    spike_mismatches_f32: int = 0

    @property
    def exact(self) -> bool:
        return (self.spike_mismatches == 0 and self.spike_mismatches_f32 == 0 and self.removed_channel_spikes == 0
                and self.max_logit_diff_f64 < 1e-9)

    def to_dict(self) -> dict:
        return asdict(self) | {"exact": self.exact}


def compare_stripped(masked: Graph, stripped: Graph, kept_index: dict[str, torch.Tensor],
                     x: torch.Tensor) -> StripParity:
    """Run both graphs on `x` in float64 and float32; compare every neuron's spikes (restricted to the
    kept channels, or features after a flatten)."""
    ref, out = (run_graph(g, x, record=True, dtype=torch.float64) for g in (masked, stripped))
    ref32, out32 = (run_graph(g, x, record=True) for g in (masked, stripped))
    compared, mismatches, removed = _compare_spikes(ref.spikes, out.spikes, kept_index)
    _, mismatches32, removed32 = _compare_spikes(ref32.spikes, out32.spikes, kept_index)
    return StripParity(
        samples=int(x.shape[0]),
        spikes_compared=compared,
        spike_mismatches=mismatches,
        removed_channel_spikes=removed + removed32,
        max_logit_diff_f64=float((ref.logits - out.logits).abs().max()),
        max_logit_diff_f32=float((ref32.logits - out32.logits).abs().max()),
        class_agreement_f32=float((ref32.logits.argmax(1) == out32.logits.argmax(1)).float().mean()),
        spike_mismatches_f32=mismatches32,
    )


def _compare_spikes(ref: dict[str, torch.Tensor], out: dict[str, torch.Tensor],
                    kept_index: dict[str, torch.Tensor]) -> tuple[int, int, int]:
    """(spikes compared, mismatches, spikes in removed channels); spikes are [T, N, C, ...] or [T, N, F]."""
    compared = mismatches = removed = 0
    for name, spikes in ref.items():
        index = kept_index.get(name)
        if index is not None:
            dropped = torch.ones(spikes.shape[2], dtype=torch.bool)
            dropped[index] = False
            removed += int(spikes[:, :, dropped].sum())
            spikes = spikes[:, :, index]
        compared += spikes.numel()
        mismatches += int((spikes != out[name]).sum())
    return compared, mismatches, removed
