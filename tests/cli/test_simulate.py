"""`scadeploy simulate`: compiled model.net on the checkpoint's test set, with the emulator and with Lava."""

from __future__ import annotations

import dataclasses
import json
import shutil

import pytest
import torch
from support import invoke, write_checkpoint

from scadeploy.frontends.checkpoint import load_checkpoint, save_checkpoint


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    root = tmp_path_factory.mktemp("simulate")
    ckpt_path = write_checkpoint(root / "digits.pt", keep=0.5)
    ckpt = load_checkpoint(ckpt_path)
    save_checkpoint(dataclasses.replace(ckpt, meta={"dataset": "digits"}), ckpt_path)
    result = invoke("compile", str(ckpt_path), "-o", str(root / "out"), "--target", "loihi2-sim")
    assert result.exit_code == 0, result.output
    return root / "out"


def test_emulator_reports_accuracy_agreement_rates_synops_and_speed(compiled):
    result = invoke("simulate", str(compiled), "--backend", "emulator", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["backend"] == "emulator" and report["dataset"] == "digits" and report["samples"] == 450
    for key in ("accuracy", "float_accuracy", "agreement_with_float"):
        assert 0.0 <= report[key] <= 1.0
    assert report["agreement_with_float"] > 0.5
    assert set(report["firing_rates"]) >= {"features.sn1", "features.pool1", "features.sn3"}
    assert all(0.0 <= r <= 1.0 for r in report["firing_rates"].values())
    assert report["synops_per_sample"]["features.sn1"]["macs"] > 0  # graded pixels: MACs
    assert report["synops_per_sample"]["features.sn2"]["acs"] > 0  # spikes: ACs
    assert report["steps"] == 450 * 4 and report["steps_per_second"] > 0


def test_text_output_and_sample_limit(compiled):
    result = invoke("simulate", str(compiled), "--samples", "30")
    assert result.exit_code == 0, result.output
    assert "emulator on 30 samples of digits test split" in result.stdout and "steps/s" in result.stdout


@pytest.mark.lava
@pytest.mark.slow
def test_lava_backend_matches_the_emulator(compiled):
    result = invoke("simulate", str(compiled), "--backend", "lava", "--samples", "3", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["backend"] == "lava" and report["samples"] == 3
    assert report["emulator_spike_mismatches"] == 0
    assert report["steps"] == 3 * 4 + 6 and report["steps_per_second"] > 0


def test_missing_manifest_is_one_clear_error(tmp_path):
    result = invoke("simulate", str(tmp_path))
    assert result.exit_code == 2
    assert "has no manifest.json" in result.stderr and "scadeploy compile" in result.stderr


def test_directory_without_a_lava_target(compiled, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(compiled, out)
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["targets"] = {}
    (out / "manifest.json").write_text(json.dumps(manifest))
    result = invoke("simulate", str(out))
    assert result.exit_code == 2 and "compiled without a Lava target" in result.stderr


def test_directory_without_a_data_source_needs_data(compiled, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(compiled, out)
    (out / "stripped.pt").unlink()  # nothing downstream needs it
    manifest = json.loads((out / "manifest.json").read_text())
    del manifest["data"]
    (out / "manifest.json").write_text(json.dumps(manifest))
    result = invoke("simulate", str(out))
    assert result.exit_code == 2 and "records no data source" in result.stderr and "--data" in result.stderr
    result = invoke("simulate", str(out), "--data", "digits", "--samples", "5", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["samples"] == 5


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error shown when no GPU is present")
def test_cuda_without_a_gpu_is_one_clear_error(compiled):
    result = invoke("simulate", str(compiled), "--device", "cuda")
    assert result.exit_code == 2 and "CUDA is not available" in result.stderr
