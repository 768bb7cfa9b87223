"""The one parity record: logits compared (ties, nan, the tolerance's edge), spikes counted and judged tie-aware."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from graphs import TIE_INPUT as X
from graphs import flipped, threshold_tie_graph

from scadeploy.backends.torch_ref import run_graph
from scadeploy.ir.agreement import (
    TOLERANCES,
    Agreement,
    agreement,
    compare_logits,
    count_spikes,
    float32_spikes,
)

LOGITS = torch.tensor([[2.0, 0.0, -1.0], [0.0, 3.0, 1.0], [1.0, 1.5, 4.0], [5.0, 0.0, 0.0]])


def _record(candidate: torch.Tensor, tolerance: float | None = 1e-4) -> Agreement:
    return agreement("ref", "cand", "f32", compare_logits(LOGITS, candidate), tolerance)


def test_equal_logits_agree_exactly():
    record = _record(LOGITS.clone())
    assert (record.samples, record.max_logit_diff, record.class_agreement) == (4, 0.0, 1.0)
    assert record.passed and record.explained


def test_one_class_flipped_is_a_quarter_of_the_samples_and_fails():
    flipped = LOGITS.clone()
    flipped[1, 2] = 5.0  # sample 1 now picks class 2
    record = _record(flipped)
    assert record.class_agreement == 0.75 and record.max_logit_diff == 4.0
    assert record.passed is False


def test_a_class_flip_inside_the_tolerance_is_a_tie_of_logits_not_a_failure():
    tied = torch.tensor([[1.0, 1.0 - 1e-6]])
    record = agreement("ref", "cand", "f32", compare_logits(tied, tied.flip(1)), 1e-4)
    assert record.class_agreement == 0.0 and record.passed


def test_nan_logits_never_agree():
    broken = LOGITS.clone()
    broken[2, 0] = math.nan
    logits = compare_logits(LOGITS, broken)
    assert math.isnan(logits.max_diff) and logits.class_agreement == 0.75  # the nan row counts as a flip
    assert _record(broken).passed is False


def test_infinite_and_misshapen_logits_never_agree():
    assert _record(torch.full_like(LOGITS, math.inf)).passed is False
    misshapen = compare_logits(LOGITS, LOGITS[:, :2])
    assert misshapen.max_diff == math.inf and misshapen.class_agreement == 0.0


@pytest.mark.parametrize(("offset", "passed"), [(0.0, True), (1e-4, True), (np.nextafter(1e-4, 1.0), False)])
def test_the_tolerance_is_inclusive(offset: float, passed: bool):
    reference = torch.zeros(2, 3, dtype=torch.float64)
    candidate = reference.clone()
    candidate[0, 0] = offset
    record = agreement("ref", "cand", "f64", compare_logits(reference, candidate), 1e-4)
    assert record.max_logit_diff == offset and record.passed is passed


def test_numpy_and_torch_of_different_dtypes_compare_alike():
    from_numpy = compare_logits(LOGITS.numpy(), LOGITS.double().numpy() + 1e-5)
    from_torch = compare_logits(LOGITS, LOGITS.double() + 1e-5)
    assert from_numpy == from_torch and from_torch.max_diff == pytest.approx(1e-5)


def test_without_a_tolerance_it_is_reported_not_judged():
    record = _record(LOGITS + 1.0, tolerance=None)
    assert record.passed is None and record.to_dict()["passed"] is None and record.max_logit_diff == 1.0


def test_the_record_reads_back_from_its_dict():
    record = _record(LOGITS + 1e-5)
    data = record.to_dict() | {"step_vs_sequence_max_diff": 0.0}  # a section's own keys are left out
    assert Agreement.from_dict(data) == record and data["passed"] is True


def test_the_table_orders_exact_below_trace_below_runtime():
    assert 0 < TOLERANCES.exact < TOLERANCES.trace < TOLERANCES.runtime


def test_spikes_are_counted_per_layer_restricted_to_kept_channels():
    reference = {"a": torch.zeros(2, 1, 3, 2), "b": torch.ones(2, 1, 4)}
    reference["a"][0, 0, 2, 0] = 1  # in channel 2, which the candidate removed
    candidate = {"a": torch.zeros(2, 1, 2, 2), "b": torch.ones(2, 1, 4)}
    candidate["b"][1, 0, 3] = 0
    counted = count_spikes(reference, candidate, {"a": torch.tensor([0, 1])})
    assert (counted.layers, counted.compared, counted.mismatches, counted.removed) == (2, 16, 1, 1)
    assert counted.worst_layer == "b" and (counted.roots, counted.ties) == (1, 0)  # unjudged: a real difference


def test_a_layer_missing_or_misshapen_is_not_compared():
    reference = {"a": torch.zeros(1, 1, 2), "b": torch.zeros(1, 1, 2)}
    counted = count_spikes(reference, {"a": torch.zeros(1, 1, 3)})
    assert (counted.layers, counted.layers_total, counted.compared) == (0, 2, 0)


def test_a_flip_at_a_threshold_tie_passes_whatever_the_logits():
    graph = threshold_tie_graph()
    spikes = run_graph(graph, X, record=True).spikes
    judged = float32_spikes(graph, spikes, flipped(spikes, ("sn1", (1, 0, 0, 0, 0)), ("sn2", (1, 0, 0))), X)
    assert (judged.mismatches, judged.roots, judged.ties) == (2, 1, 1)
    far = agreement("ref", "cand", "f32", compare_logits(LOGITS, LOGITS + 1.0), TOLERANCES.runtime, judged)
    assert far.explained and far.passed and "all downstream of 1 threshold ties" in far.spike_summary()


def test_a_real_flip_fails_even_with_logits_within_tolerance():
    graph = threshold_tie_graph()
    spikes = run_graph(graph, X, record=True).spikes
    judged = float32_spikes(graph, spikes, flipped(spikes, ("sn1", (0, 0, 0, 0, 1))), X)
    assert (judged.roots, judged.ties) == (1, 0)
    record = agreement("ref", "cand", "f32", compare_logits(LOGITS, LOGITS), TOLERANCES.runtime, judged)
    assert record.passed is False and "1 not explained by float32 rounding" in record.spike_summary()


def test_flips_stay_unexplained_when_a_layer_is_missing():
    graph = threshold_tie_graph()
    spikes = run_graph(graph, X, record=True).spikes
    partial = {"sn1": flipped(spikes, ("sn1", (1, 0, 0, 0, 0)))["sn1"]}  # the tie flip, but sn2 not read back
    judged = float32_spikes(graph, spikes, partial, X)
    assert (judged.layers, judged.mismatches, judged.roots, judged.ties) == (1, 1, 1, 0)
