"""`scadeploy.write_artifacts` with targets that refuse the model: the others are written, refusals recorded."""

from __future__ import annotations

import json

import pytest
import torch
from spikingjelly.activation_based import layer, neuron
from torch import nn

import scadeploy
from scadeploy.artifact.manifest import read_manifest
from scadeploy.errors import TargetError, UnsupportedError
from scadeploy.models import MeanOverTime


def analog_maxpool_net() -> nn.Module:
    """Max pooling of the analog input (before any neuron): ONNX lowers it, Lava and NIR pool spikes only."""
    return nn.Sequential(
        layer.MaxPool2d(2, 2, step_mode="m"),
        layer.Conv2d(1, 4, 3, padding=1, step_mode="m"),
        neuron.IFNode(step_mode="m"),
        layer.Flatten(step_mode="m"),
        MeanOverTime(),
        layer.Linear(4 * 4 * 4, 10, step_mode="s"),
    ).eval()


@pytest.fixture(scope="module")
def result():
    torch.manual_seed(0)
    return scadeploy.compile(analog_maxpool_net(), None, torch.rand(8, 1, 8, 8) * 2, 4)


def test_refused_targets_are_recorded_and_the_others_written(result, tmp_path):
    manifest = scadeploy.write_artifacts(result, tmp_path / "D", ["onnx-cpu", "loihi2-sim", "nir"])
    assert list(manifest.targets) == ["onnx-cpu"] and (tmp_path / "D" / "model.onnx").is_file()
    assert set(manifest.refused) == {"loihi2-sim", "nir"} and result.refused == manifest.refused
    assert "reads analog values" in manifest.refused["loihi2-sim"].reason
    assert "\n" not in manifest.refused["nir"].reason
    assert read_manifest(tmp_path / "D").to_dict() == json.loads(json.dumps(manifest.to_dict()))  # what was written


def test_every_target_refusing_raises_and_writes_nothing(result, tmp_path):
    with pytest.raises(UnsupportedError, match="reads analog values"):
        scadeploy.write_artifacts(result, tmp_path / "D", ["loihi2-sim"])
    assert list(tmp_path.iterdir()) == []


def test_a_failed_parity_check_still_fails_the_compile(result, tmp_path, monkeypatch):
    """An export that measures a wrong result is not a refusal: nothing is written, the error propagates."""
    from scadeploy.backends.onnx import export as onnx_export

    def mismatching(*args, **kwargs):
        raise TargetError("fixed point is not exact: 3 of 100 spikes differ")

    monkeypatch.setattr(onnx_export, "export", mismatching)
    with pytest.raises(TargetError, match="not exact"):
        scadeploy.write_artifacts(result, tmp_path / "D", ["onnx-cpu", "loihi2-sim"])
    assert list(tmp_path.iterdir()) == []


def test_malformed_or_clashing_targets_fail_before_anything_runs(result, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "lava-bad"\nbackend = "lava"\n[lava]\nparity_samples = 0\n')
    with pytest.raises(TargetError, match="parity_samples must be an integer"):
        scadeploy.write_artifacts(result, tmp_path / "D", ["onnx-cpu", str(bad)])
    clash = tmp_path / "clash.toml"
    clash.write_text('name = "onnx-cpu"\nbackend = "nir"\n')
    with pytest.raises(TargetError, match="two targets are named 'onnx-cpu'"):
        scadeploy.write_artifacts(result, tmp_path / "D", ["onnx-cpu", str(clash)])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.toml", "clash.toml"]
