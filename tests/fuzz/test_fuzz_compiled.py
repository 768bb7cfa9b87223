"""Fuzzed files of a compiled directory and fuzzed target files.

The directory mutators are generic (`mutate_file` on any file of the directory), so they keep
working when the directory's contents change: model.net through `simulate --backend emulator`,
manifest.json through `simulate` and `benchmark` (also of a directory where a target refused),
the serialized graphs (JSON and safetensors) through `inspect`, `benchmark` and `simulate`, target
TOML files through `compile -t FILE`, alone and beside a target that compiles (which must then be
written whatever the fuzzed one does, with the fuzzed one compiled or named as refused).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fuzz.harness import case_count, case_rng, check_targets, copy_compiled, record, run_cli
from fuzz.mutations import mutate_file

from scadeploy.targets import TARGETS_DIR

NET_CASES = case_count(fast=12, full=220)
MANIFEST_CASES = case_count(fast=6, full=60)
REFUSED_CASES = case_count(fast=4, full=40)
TARGET_CASES = case_count(fast=8, full=80)
BESIDE_CASES = case_count(fast=4, full=40)
GRAPH_CASES = case_count(fast=8, full=120)
GRAPH_FILES = ("stripped.graph.json", "stripped.safetensors", "masked.graph.json", "masked.safetensors")
SIMULATE = ["--backend", "emulator", "--samples", "8", "--json"]
BENCHMARK = ["-b", "1", "--warmup", "0", "--repeats", "1", "--threads", "1", "-r", "onnx:stripped", "--json"]


@pytest.mark.parametrize("case", range(NET_CASES))
def test_model_net(base: dict, tmp_path: Path, request: pytest.FixtureRequest, case: int) -> None:
    out = copy_compiled(base, tmp_path / "compiled")
    what = mutate_file(out / "model.net", case_rng("model.net", case))
    record(request, "model.net", what, run_cli(["simulate", str(out), *SIMULATE]))


@pytest.mark.parametrize("case", range(MANIFEST_CASES))
def test_manifest(base: dict, tmp_path: Path, request: pytest.FixtureRequest, case: int) -> None:
    out = copy_compiled(base, tmp_path / "compiled")
    what = mutate_file(out / "manifest.json", case_rng("manifest", case))
    argv = ["simulate", str(out), *SIMULATE] if case % 2 else ["benchmark", str(out), *BENCHMARK]
    record(request, "manifest.json", what, run_cli(argv))


@pytest.mark.parametrize("case", range(REFUSED_CASES))
def test_manifest_with_a_refused_target(partial: Path, tmp_path: Path, request: pytest.FixtureRequest,
                                        case: int) -> None:
    out = copy_compiled({"compiled": partial}, tmp_path / "compiled")
    what = mutate_file(out / "manifest.json", case_rng("refused manifest", case))
    argv = ["simulate", str(out), *SIMULATE] if case % 2 else ["inspect", str(out), "--json"]
    record(request, "manifest.json (refused)", what, run_cli(argv))


@pytest.mark.parametrize("case", range(BESIDE_CASES))
def test_target_file_beside_onnx(base: dict, tmp_path: Path, request: pytest.FixtureRequest, case: int) -> None:
    rng = case_rng("target beside onnx", case)
    path = tmp_path / "fuzzed.toml"
    shutil.copy(TARGETS_DIR / rng.choice(["loihi2-sim.toml", "nir.toml"]), path)
    what = mutate_file(path, rng)
    out = tmp_path / "out"
    outcome = run_cli(["compile", str(base["path"]), "-o", str(out), "-t", "onnx-cpu", "-t", str(path)], out)
    record(request, "target file beside onnx", what, check_targets(outcome, out, 2))


@pytest.mark.parametrize("case", range(TARGET_CASES))
def test_target_file(base: dict, tmp_path: Path, request: pytest.FixtureRequest, case: int) -> None:
    rng = case_rng("target", case)
    path = tmp_path / "fuzzed.toml"
    shutil.copy(TARGETS_DIR / rng.choice(["loihi2-sim.toml", "onnx-cpu.toml"]), path)
    what = mutate_file(path, rng)
    out = tmp_path / "out"
    record(request, "target file", what, run_cli(["compile", str(base["path"]), "-o", str(out), "-t", str(path)], out))


@pytest.mark.parametrize("case", range(GRAPH_CASES))
def test_graph_files(base: dict, tmp_path: Path, request: pytest.FixtureRequest, case: int) -> None:
    out = copy_compiled(base, tmp_path / "compiled")
    rng = case_rng("graph", case)
    name = GRAPH_FILES[case % len(GRAPH_FILES)]
    what = mutate_file(out / name, rng)
    command = (["inspect", str(out), "--json"], ["benchmark", str(out), *BENCHMARK, "-r", "onnx:masked"],
               ["simulate", str(out), *SIMULATE])[case % 3]
    record(request, name, what, run_cli(command))
