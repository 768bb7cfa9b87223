"""The checkpoint format: round trip, and one clear error for every kind of bad file."""

from __future__ import annotations

import pytest
import torch
from support import write_checkpoint

from scadeploy.checkpoint import load_checkpoint, save_checkpoint
from scadeploy.errors import CheckpointError, MaskError


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
