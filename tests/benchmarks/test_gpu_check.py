"""benchmarks/gpu_check.py on a machine without a GPU: arguments, the result file, the skip path, the emulator step."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def gpu_check():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import gpu_check

        yield gpu_check
    finally:
        sys.path.remove(str(BENCHMARKS))


def test_arguments(gpu_check) -> None:
    args = gpu_check.parse_args([])
    assert args.steps == list(gpu_check.STEPS) and args.batch_sizes == [1, 16, 256] and args.device == "cuda"
    args = gpu_check.parse_args(["--steps", "latency, emulator", "--batch-sizes", "1", "16"])
    assert args.steps == ["latency", "emulator"] and args.batch_sizes == [1, 16]
    with pytest.raises(SystemExit):
        gpu_check.parse_args(["--steps", "latency,tvm"])


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the path taken when no GPU is present")
def test_without_cuda_it_says_why_and_exits_2(gpu_check, tmp_path, capsys) -> None:
    out = tmp_path / "gpu.json"
    assert gpu_check.main(["--out", str(out)]) == 2
    assert "skipped: torch" in capsys.readouterr().err
    data = json.loads(out.read_text())
    assert "sees no CUDA GPU" in data["skipped"] and data["schema"] == gpu_check.SCHEMA
    assert data["sections"]["environment"]["torch"] == torch.__version__ and data["failed"] == []


def test_emulator_step_on_the_cpu_against_the_cpu(gpu_check, tmp_path) -> None:
    out = tmp_path / "gpu.json"
    assert gpu_check.main(["--device", "cpu", "--steps", "environment,emulator", "--emulator-samples", "40",
                           "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["failed"] == [] and set(data["sections"]) == {"environment", "emulator"}
    emulator = data["sections"]["emulator"]
    assert emulator["identical"] and emulator["samples"] == 40 and emulator["spikes_compared"] > 0
    assert emulator["seconds"] > 0


def test_a_failing_step_is_recorded_and_the_rest_still_run(gpu_check, tmp_path, monkeypatch) -> None:
    def broken(*args, **kwargs):
        raise RuntimeError("no kernel image for this GPU")

    monkeypatch.setattr(gpu_check, "step_emulator", broken)
    out = tmp_path / "gpu.json"
    assert gpu_check.main(["--device", "cpu", "--steps", "emulator,environment", "--out", str(out)]) == 1
    data = json.loads(out.read_text())
    assert data["failed"] == ["emulator"] and "no kernel image" in data["sections"]["emulator"]["error"]
    assert "torch" in data["sections"]["environment"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the path taken when no GPU is present")
def test_the_script_skips_with_a_clear_message(tmp_path) -> None:
    env = os.environ | {"SKIP_INSTALL": "1", "PYTHON": sys.executable}
    done = subprocess.run(["bash", str(BENCHMARKS / "gpu_check.sh"), "--out", str(tmp_path / "gpu.json")],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "gpu_check: skipped:" in done.stderr
    assert json.loads((tmp_path / "gpu.json").read_text())["skipped"]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_emulator_on_cuda_is_bit_exact(gpu_check, tmp_path) -> None:
    out = tmp_path / "gpu.json"
    assert gpu_check.main(["--steps", "emulator", "--emulator-samples", "256", "--out", str(out)]) == 0
    assert json.loads(out.read_text())["sections"]["emulator"]["identical"]
