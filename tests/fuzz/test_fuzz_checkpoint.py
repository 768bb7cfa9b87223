"""Fuzzed checkpoints through `inspect` (every case) and `compile` (one case in COMPILE_EVERY):
field-level mutations of a valid checkpoint dict, and byte-level mutations of its file."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from fuzz.harness import case_count, case_rng, record, run_cli
from fuzz.mutations import mutate_bytes, mutate_fields

FIELD_CASES = case_count(fast=24, full=700)
BYTE_CASES = case_count(fast=12, full=350)
COMPILE_EVERY = 8


def _run(tmp_path: Path, path: Path, case: int) -> object:
    if case % COMPILE_EVERY == 0:
        out = tmp_path / "out"
        return run_cli(["compile", str(path), "-o", str(out), "-t", "onnx-cpu", "-t", "loihi2-sim"], out)
    return run_cli(["inspect", str(path), "--json"])


@pytest.mark.parametrize("case", range(FIELD_CASES))
def test_checkpoint_fields(base: dict, tmp_path: Path, request: pytest.FixtureRequest, case: int) -> None:
    raw, what = mutate_fields(base["raw"], case_rng("checkpoint-fields", case))
    path = tmp_path / "mutated.pt"
    torch.save(raw, path)
    record(request, "checkpoint fields", what, _run(tmp_path, path, case))


@pytest.mark.parametrize("case", range(BYTE_CASES))
def test_checkpoint_bytes(base: dict, tmp_path: Path, request: pytest.FixtureRequest, case: int) -> None:
    data, what = mutate_bytes(base["bytes"], case_rng("checkpoint-bytes", case))
    path = tmp_path / "mutated.pt"
    path.write_bytes(data)
    record(request, "checkpoint bytes", what, _run(tmp_path, path, case))
