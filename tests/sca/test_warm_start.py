"""Warm start: a run begins with the checkpoint's weights; a checkpoint of another model or dataset is refused."""

from __future__ import annotations

import pytest
import torch
from support import invoke

from scadeploy.frontends.checkpoint import load_checkpoint, save_checkpoint
from scadeploy.sca import TrainConfig, train
from scadeploy.sca.config import ConfigError
from scadeploy.sca.trainer import Trainer

TINY = {"epochs": 1, "batch_size": 128, "model_kwargs": {"widths": [4, 8, 8]}}


@pytest.fixture(scope="module")
def dense_path(tmp_path_factory):
    return save_checkpoint(train(TrainConfig(**TINY)).checkpoint, tmp_path_factory.mktemp("init") / "dense.pt")


def test_the_run_starts_from_the_checkpoint_weights(dense_path):
    state = load_checkpoint(dense_path).state_dict
    warm = Trainer(TrainConfig(keep_ratio=0.5, init=str(dense_path), **TINY)).model.state_dict()
    cold = Trainer(TrainConfig(keep_ratio=0.5, **TINY)).model.state_dict()
    assert state.keys() == warm.keys()
    assert all(torch.equal(warm[k], v) for k, v in state.items())  # BN statistics included
    assert not all(torch.equal(cold[k], v) for k, v in state.items())


@pytest.mark.parametrize("options, message", [
    ({"model_kwargs": {"widths": [4, 8, 6]}}, r"widths=\[4, 8, 8\]\), this run trains a digits\("),
    ({"neuron": "lif"}, "neuron=lif"),
])
def test_a_checkpoint_of_another_model_is_refused(dense_path, options, message):
    config = TrainConfig(keep_ratio=0.5, init=str(dense_path), **{**TINY, **options})
    with pytest.raises(ConfigError, match=message) as info:
        Trainer(config)
    assert "same model" in info.value.hint


def test_a_checkpoint_of_another_dataset_is_refused_on_the_command_line(dense_path, tmp_path):
    result = invoke("train", "--model", "vgg_mnist", "--dataset", "mnist5k", "--init", str(dense_path),
                    "-o", str(tmp_path / "x.pt"))
    assert result.exit_code == 2 and "Traceback" not in result.stderr
    assert "was trained on digits, this run trains on mnist5k" in result.stderr
    assert not (tmp_path / "x.pt").exists()
