"""How far one execution of a network is from another: the one record, comparisons and tolerances of parity.

Every check runs a candidate beside a reference on the same inputs: ONNX Runtime, OpenVINO and the
NIR peers against the float32 torch reference, the traced graph against the user's module, the
stripped graph against the masked one, the Lava emulator against its integer graph and against
float, each benchmark runner against the reference of its model. Each gives one `Agreement`, and its
`to_dict` is what the manifest and `scadeploy benchmark` write.

Spikes of two float32 runs are compared tie-aware: a spike that differs because the exact potential
lay within float32 rounding of the threshold is a tie (`ir/rounding.py`), and every spike downstream
of it may follow. Logits then may differ by more than any tolerance, and that is still agreement.
Runs in float64 or in integers have no ties: every differing spike there is a real difference.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import numpy as np
import torch

from scadeploy.ir.graph import Graph
from scadeploy.ir.rounding import judge_float32_flips


@dataclass(frozen=True)
class Tolerances:
    """The largest max |logit diff| each kind of comparison accepts, and why that much."""

    runtime: float = 1e-4  # another float32 runtime or peer vs the float32 torch reference: other kernels and
    # summation orders (the default parity_tolerance of the onnx and openvino targets)
    trace: float = 1e-6  # the user's module vs its traced graph, both float64: only summation order differs
    exact: float = 1e-9  # runs equal in exact arithmetic: stripped vs masked in float64, and the emulator vs
    # the integer graph (the same integers decoded to logits in two float orders)


TOLERANCES = Tolerances()
TORCH_REF_F32 = "torch_ref (f32)"  # the reference every runtime, peer and benchmark runner is measured against


@dataclass(frozen=True)
class Logits:
    """Two `[N, classes]` logit arrays compared; a non-finite logit is never agreement."""

    samples: int
    max_diff: float  # nan when either side has a nan, inf when the shapes differ
    class_agreement: float  # fraction of samples whose argmax matches (a row with a non-finite logit does not)


def compare_logits(reference: torch.Tensor | np.ndarray, candidate: torch.Tensor | np.ndarray) -> Logits:
    """Max |logit diff| and argmax agreement, in float64 whatever the two dtypes."""
    ref, got = (torch.as_tensor(t).double() for t in (reference, candidate))
    samples = int(ref.shape[0]) if ref.dim() else 1
    if ref.shape != got.shape:
        return Logits(samples, math.inf, 0.0)
    if ref.numel() == 0:
        return Logits(samples, 0.0, 1.0)
    # NOTE: torch's max propagates nan, so one nan logit makes the whole difference nan (never within tolerance).
    diff = float((ref - got).abs().max())
    ref2, got2 = ref.reshape(samples, -1), got.reshape(samples, -1)
    finite = torch.isfinite(ref2).all(1) & torch.isfinite(got2).all(1)
    same = (ref2.argmax(1) == got2.argmax(1)) & finite
    return Logits(samples, diff, float(same.double().mean()))


@dataclass(frozen=True)
class Spikes:
    """Every neuron layer's spikes of two runs compared; differences judged as ties where the runs are float32.

    A difference is a root when every neuron upstream of it agrees in both runs; until judged, every
    difference is a root and none is a tie (`float32_spikes` judges them)."""

    layers: int  # neuron layers compared (in both runs, with equal shapes)
    layers_total: int  # neuron layers of the reference
    compared: int
    mismatches: int
    roots: int
    ties: int  # roots within float32 rounding of the threshold
    removed: int = 0  # reference spikes in channels the candidate removed (must be 0 for stripping)
    worst_layer: str | None = None  # the layer with the most differing spikes


NO_SPIKES = Spikes(0, 0, 0, 0, 0, 0)  # a comparison of logits alone (a benchmark runner)


def count_spikes(reference: Mapping[str, torch.Tensor], candidate: Mapping[str, torch.Tensor],
                 kept_index: Mapping[str, torch.Tensor] | None = None) -> Spikes:
    """Spikes `[T, N, C, ...]` that differ, layer by layer; a layer the candidate lacks, or holds in another
    shape, is not compared. `kept_index` restricts a reference layer to the channels the candidate kept."""
    kept_index = kept_index or {}
    layers = compared = mismatches = removed = worst_count = 0
    worst = None
    for name, spikes in reference.items():
        index = kept_index.get(name)
        if index is not None:
            dropped = torch.ones(spikes.shape[2], dtype=torch.bool)
            dropped[index] = False
            removed += int(spikes[:, :, dropped].sum())
            spikes = spikes[:, :, index]
        other = candidate.get(name)
        if other is None or other.shape != spikes.shape:
            continue
        count = int((spikes != other).sum())
        layers, compared, mismatches = layers + 1, compared + spikes.numel(), mismatches + count
        if count > worst_count:
            worst, worst_count = name, count
    return Spikes(layers, len(reference), compared, mismatches, mismatches, 0, removed, worst)


def float32_spikes(graph: Graph, reference: Mapping[str, torch.Tensor], candidate: Mapping[str, torch.Tensor],
                   x: torch.Tensor, kept_index: Mapping[str, torch.Tensor] | None = None) -> Spikes:
    """`count_spikes` of two float32 runs of `graph` on `x`, each difference judged a tie or a real one.

    Roots need every layer's spikes: with a layer missing, every difference stays unexplained."""
    counted = count_spikes(reference, candidate, kept_index)
    if counted.mismatches == 0 or counted.layers < counted.layers_total:
        return counted
    judged = judge_float32_flips(graph, dict(reference), dict(candidate), dict(kept_index or {}), x)
    return replace(counted, roots=judged.roots, ties=judged.ties)


@dataclass(frozen=True)
class Agreement:
    """A candidate execution against a reference on the same inputs, and whether it passes.

    It passes when every differing spike follows from a float32 threshold tie and, when no spike
    differs, the logits are within `tolerance`. Classes may then still differ where the reference's
    top two logits lie within twice the tolerance: a tie of logits, counted in `class_agreement`
    but no failure. `tolerance` None: measured and reported, not judged (`passed` is None)."""

    reference: str
    candidate: str
    arithmetic: str  # what the candidate ran in: 'f32', 'f64', 'bf16', 'fixed point'
    samples: int
    max_logit_diff: float
    class_agreement: float
    tolerance: float | None
    spikes_compared: int = 0
    spike_mismatches: int = 0
    spike_flip_roots: int = 0  # differences whose upstream spikes agree in both runs
    spike_ties: int = 0  # of those, within float32 rounding of the threshold
    neuron_layers_compared: int = 0
    neuron_layers: int = 0
    worst_layer: str | None = None

    @property
    def explained(self) -> bool:
        """No spike differs, or every difference follows from a float32 threshold tie."""
        return self.spike_flip_roots == self.spike_ties

    @property
    def passed(self) -> bool | None:
        if self.tolerance is None:
            return None
        return self.explained and (self.spike_mismatches > 0 or self.max_logit_diff <= self.tolerance)

    def spike_summary(self) -> str:
        """One phrase on the differing spikes, for people."""
        if self.spike_mismatches == 0:
            return f"0 of {self.spikes_compared:,} spikes differ"
        why = (f"all downstream of {self.spike_ties} threshold ties within float32 rounding" if self.explained
               else f"{self.spike_flip_roots - self.spike_ties} not explained by float32 rounding")
        return f"{self.spike_mismatches} of {self.spikes_compared:,} spikes differ ({why})"

    def to_dict(self) -> dict:
        """The record as the manifest and the benchmark report hold it."""
        return asdict(self) | {"passed": self.passed}

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> Agreement:
        """The record `to_dict` wrote, its verdict recomputed; keys beside it (a section's own) are left out."""
        return cls(**{f.name: record[f.name] for f in fields(cls) if f.name in record})


def agreement(reference: str, candidate: str, arithmetic: str, logits: Logits, tolerance: float | None,
              spikes: Spikes = NO_SPIKES) -> Agreement:
    """The record of one comparison from its logits and spikes."""
    return Agreement(reference, candidate, arithmetic, logits.samples, logits.max_diff, logits.class_agreement,
                     tolerance, spikes.compared, spikes.mismatches, spikes.roots, spikes.ties, spikes.layers,
                     spikes.layers_total, spikes.worst_layer)
