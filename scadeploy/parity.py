"""Measured agreement between two executions of a model: the evidence every lowering must produce."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from scadeploy.backends.torch_ref import run_graph
from scadeploy.ir.graph import Graph


@dataclass(frozen=True)
class StripParity:
    """Masked vs stripped graph on the same inputs, in float64 (no summation-order ties) and float32."""

    samples: int
    spikes_compared: int
    spike_mismatches: int
    removed_channel_spikes: int  # spikes the masked model emitted in channels that were removed (must be 0)
    max_logit_diff_f64: float
    max_logit_diff_f32: float
    class_agreement_f32: float

    @property
    def exact(self) -> bool:
        return self.spike_mismatches == 0 and self.removed_channel_spikes == 0 and self.max_logit_diff_f64 < 1e-9

    def to_dict(self) -> dict:
        return asdict(self) | {"exact": self.exact}


def compare_stripped(masked: Graph, stripped: Graph, kept_index: dict[str, torch.Tensor],
                     x: torch.Tensor) -> StripParity:
    """Run both graphs on `x`; compare every neuron's spikes (restricted to the kept channels)."""
    ref = run_graph(masked, x, record=True, dtype=torch.float64)
    out = run_graph(stripped, x, record=True, dtype=torch.float64)
    compared = mismatches = removed_spikes = 0
    for name, spikes in ref.spikes.items():
        index = kept_index.get(name)
        if index is not None:
            dropped = torch.ones(spikes.shape[2], dtype=torch.bool)
            dropped[index] = False
            removed_spikes += int(spikes[:, :, dropped].sum())
            spikes = spikes[:, :, index]
        compared += spikes.numel()
        mismatches += int((spikes != out.spikes[name]).sum())
    ref32 = run_graph(masked, x).logits
    out32 = run_graph(stripped, x).logits
    return StripParity(
        samples=int(x.shape[0]),
        spikes_compared=compared,
        spike_mismatches=mismatches,
        removed_channel_spikes=removed_spikes,
        max_logit_diff_f64=float((ref.logits - out.logits).abs().max()),
        max_logit_diff_f32=float((ref32 - out32).abs().max()),
        class_agreement_f32=float((ref32.argmax(1) == out32.argmax(1)).float().mean()),
    )
