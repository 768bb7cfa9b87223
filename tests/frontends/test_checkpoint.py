"""The checkpoint format: round trip, and one clear error for every kind of bad file."""

from __future__ import annotations

import json
import time

import pytest
import torch
from support import invoke, write_checkpoint

from scadeploy.errors import CheckpointError, MaskError
from scadeploy.frontends.checkpoint import load_checkpoint, save_checkpoint


def test_round_trip(tmp_path) -> None:
    path = write_checkpoint(tmp_path / "a.pt")
    ckpt = load_checkpoint(path)
    assert ckpt.arch["name"] == "digits" and ckpt.timesteps == 4 and ckpt.input_shape == (1, 8, 8)
    save_checkpoint(ckpt, tmp_path / "b.pt")
    again = load_checkpoint(tmp_path / "b.pt")
    assert all(torch.equal(again.state_dict[k], v) for k, v in ckpt.state_dict.items())
    assert all(torch.equal(again.masks[k], v) for k, v in ckpt.masks.items())
    model = again.build()
    assert not model.training


def test_corrupt_file(tmp_path) -> None:
    path = write_checkpoint(tmp_path / "a.pt")
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_checkpoint(path)


def test_foreign_file(tmp_path) -> None:
    path = tmp_path / "state.pt"
    torch.save({"conv.weight": torch.zeros(2)}, path)
    with pytest.raises(CheckpointError, match="not a scadeploy checkpoint"):
        load_checkpoint(path)


class Payload:
    """Any class: unpickling it would run code named by the file."""


def test_pickled_code_is_refused(tmp_path) -> None:
    path = tmp_path / "evil.pt"
    torch.save({"format": "scadeploy.checkpoint", "payload": Payload()}, path)
    with pytest.raises(CheckpointError, match="pickled Python objects"):
        load_checkpoint(path)


def test_missing_file(tmp_path) -> None:
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pt")


def test_mask_of_wrong_shape(tmp_path) -> None:
    path = write_checkpoint(tmp_path / "a.pt")
    raw = torch.load(path, weights_only=True)
    raw["masks"]["features.conv1"] = torch.ones(5, dtype=torch.bool)
    torch.save(raw, path)
    with pytest.raises(MaskError, match=r"mask 'features.conv1' has shape \(5,\), expected \(16,\)"):
        load_checkpoint(path)


def test_mask_naming_unknown_layer(tmp_path) -> None:
    path = write_checkpoint(tmp_path / "a.pt")
    raw = torch.load(path, weights_only=True)
    raw["masks"]["features.conv9"] = torch.ones(5, dtype=torch.bool)
    torch.save(raw, path)
    with pytest.raises(MaskError, match="names no layer"):
        load_checkpoint(path)


def _rewrite(path, change) -> None:
    raw = torch.load(path, weights_only=True)
    change(raw)
    torch.save(raw, path)


@pytest.mark.parametrize("dtype", [torch.int64, torch.uint8, torch.float32, torch.float64])
def test_zero_one_masks_of_any_number_type_are_booleans(tmp_path, dtype) -> None:
    path = write_checkpoint(tmp_path / "a.pt")
    reference = load_checkpoint(path)
    _rewrite(path, lambda raw: raw["masks"].update({k: v.to(dtype) for k, v in raw["masks"].items()}))
    ckpt = load_checkpoint(path)
    assert all(m.dtype == torch.bool and torch.equal(m, reference.masks[k]) for k, m in ckpt.masks.items())
    result = invoke("inspect", str(path), "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["layers"]
    conv1 = next(r for r in rows if r["layer"] == "features.conv1")
    assert conv1["masked"] == int((~reference.masks["features.conv1"]).sum()) > 0  # was -7 for int64 masks


@pytest.mark.parametrize("value", [2.0, 0.5, float("nan"), -1.0])
def test_masks_with_other_values_are_refused(tmp_path, value: float) -> None:
    path = write_checkpoint(tmp_path / "a.pt")
    mask = torch.ones(16)
    mask[3] = value
    _rewrite(path, lambda raw: raw["masks"].update({"features.conv1": mask}))
    with pytest.raises(MaskError, match="values other than 0 and 1"):
        load_checkpoint(path)


@pytest.mark.parametrize(("field", "value", "expected"), [
    ("timesteps", 0, "timesteps must be an integer in 1..1024"),
    ("timesteps", 2.5, "timesteps must be an integer"),
    ("input_shape", [1, 8], r"input_shape must be \[C, H, W\]"),
    ("input_shape", [1, -8, 8], r"input_shape\[1\] must be an integer"),
    ("num_classes", 11, "num_classes is 11, but the model outputs"),
    ("meta", {"dataset": 7}, "meta.dataset must be a string"),
    ("meta", {"x": float("inf")}, "meta.x is inf"),
    ("neuron", [1, 2], "neuron must be a dict"),
])
def test_every_field_is_checked(tmp_path, field: str, value, expected: str) -> None:
    path = write_checkpoint(tmp_path / "a.pt")
    _rewrite(path, lambda raw: raw.update({field: value}))
    with pytest.raises(CheckpointError, match=expected):
        load_checkpoint(path)


def test_weights_must_be_finite_floats(tmp_path) -> None:
    path = write_checkpoint(tmp_path / "a.pt")
    _rewrite(path, lambda raw: raw["state_dict"]["head.weight"].view(-1).__setitem__(0, float("nan")))
    with pytest.raises(CheckpointError, match=r"state_dict\['head.weight'\] holds NaN"):
        load_checkpoint(path)
    path = write_checkpoint(tmp_path / "b.pt")
    _rewrite(path, lambda raw: raw["state_dict"].update({"head.bias": torch.zeros(10, dtype=torch.int32)}))
    with pytest.raises(CheckpointError, match="expected a floating-point type"):
        load_checkpoint(path)


def test_a_model_too_large_is_refused_before_it_is_built(tmp_path) -> None:
    path = write_checkpoint(tmp_path / "a.pt")
    _rewrite(path, lambda raw: raw["arch"]["kwargs"].update(widths=[60_000, 60_000, 60_000]))
    start = time.perf_counter()
    with pytest.raises(CheckpointError, match="parameters, more than the limit"):
        load_checkpoint(path)
    assert time.perf_counter() - start < 10


def test_input_shape_that_does_not_fit_the_model_exits_2(tmp_path) -> None:
    path = write_checkpoint(tmp_path / "a.pt")
    _rewrite(path, lambda raw: raw.update(input_shape=[3, 8, 8]))
    result = invoke("inspect", str(path))
    assert result.exit_code == 2, result.output
    assert "conv2d expects 1 input channels, got 3" in result.stderr and "Traceback" not in result.output


def test_arch_kwargs_are_checked_per_model(tmp_path) -> None:
    from scadeploy.frontends.checkpoint_schema import MODEL_KWARGS
    from scadeploy.models import MODELS

    assert set(MODEL_KWARGS) == set(MODELS)  # every built-in model has its row
    path = write_checkpoint(tmp_path / "a.pt")
    _rewrite(path, lambda raw: raw["arch"]["kwargs"].update(hidden=16))  # a VGG argument, not a digits one
    with pytest.raises(CheckpointError, match=r"unknown arguments \['hidden'\] for model 'digits'"):
        load_checkpoint(path)


def test_vgg_mnist_checkpoint_round_trips_and_strips(tmp_path) -> None:
    from scadeploy.compiler import compile_checkpoint

    path = write_checkpoint(tmp_path / "v.pt", name="vgg_mnist", keep=0.3, widths=[4, 8, 8, 8, 8, 8], hidden=16)
    ckpt = load_checkpoint(path)
    assert ckpt.input_shape == (1, 28, 28) and len(ckpt.masks) == 6
    result, _ = compile_checkpoint(path, tmp_path / "out", data="mnist5k")
    assert result.report.kept == [] and result.parity.removed_channel_spikes == 0
