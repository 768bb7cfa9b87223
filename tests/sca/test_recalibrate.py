"""BN recalibration: the running statistics become the plain mean over the chosen batches, nothing else changes."""

from __future__ import annotations

import pytest
import torch
from spikingjelly.activation_based import functional
from torch import nn

from scadeploy.frontends.masks import apply_masks
from scadeploy.models import build_model, encode_direct
from scadeploy.sca import TrainConfig
from scadeploy.sca.activity import ActivityRecorder
from scadeploy.sca.recalibrate import recalibrate_batch_norm
from scadeploy.sca.trainer import Trainer


def _model() -> nn.Module:
    torch.manual_seed(0)
    return build_model("digits", num_classes=10, in_channels=1, input_size=8, neuron="if", widths=[4, 6, 6])


def _norms(model: nn.Module) -> dict[str, nn.BatchNorm2d]:
    return {name: m for name, m in model.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)}


def test_statistics_are_the_mean_over_exactly_the_chosen_batches():
    model, images = _model(), torch.rand(40, 1, 8, 8)
    inputs: dict[str, list[torch.Tensor]] = {}
    hooks = [norm.register_forward_hook(lambda m, i, o, name=name: inputs.setdefault(name, []).append(i[0]))
             for name, norm in _norms(model).items()]
    seen = recalibrate_batch_norm(model, images, 2, 8, 3, torch.Generator().manual_seed(5))
    for hook in hooks:
        hook.remove()
    assert seen == 24 and not model.training and not any(m.training for m in model.modules())
    assert {tuple(x.shape[:2]) for xs in inputs.values() for x in xs} == {(2, 8)}  # one call per batch: [T, N, ...]
    for name, norm in _norms(model).items():
        batches = inputs[name]
        assert len(batches) == 3 and norm.momentum == 0.1  # momentum restored
        per_batch = torch.stack([x.flatten(0, 1).transpose(0, 1).flatten(1).mean(1) for x in batches])
        torch.testing.assert_close(norm.running_mean, per_batch.mean(0))  # the plain mean, not a moving average
        assert int(norm.num_batches_tracked) == 3


def test_a_different_batch_count_or_seed_gives_other_statistics_and_zero_batches_change_nothing():
    images = torch.rand(64, 1, 8, 8)
    first, second, untouched = _model(), _model(), _model()
    recalibrate_batch_norm(first, images, 2, 8, 2, torch.Generator().manual_seed(1))
    recalibrate_batch_norm(second, images, 2, 8, 2, torch.Generator().manual_seed(2))
    before = {k: v.clone() for k, v in untouched.state_dict().items()}
    assert recalibrate_batch_norm(untouched, images, 2, 8, 0, torch.Generator()) == 0
    assert all(torch.equal(v, untouched.state_dict()[k]) for k, v in before.items())
    name = next(iter(_norms(first)))
    assert not torch.equal(_norms(first)[name].running_mean, _norms(second)[name].running_mean)


def test_masked_channels_stay_silent_and_activity_is_not_recorded():
    model, images = _model(), torch.rand(32, 1, 8, 8)
    masks = {unit.conv: torch.tensor([True, False] * (dict(model.named_modules())[unit.conv].out_channels // 2))
             for unit in model.prunable_units()}
    apply_masks(model, masks)
    recorder = ActivityRecorder(model)
    recalibrate_batch_norm(model, images, 2, 8, 2, torch.Generator().manual_seed(0))
    assert all(count == 0 for count in recorder.counts.values())
    recorder.remove()
    outputs = {}
    hooks = [dict(model.named_modules())[u.bn].register_forward_hook(
        lambda m, i, o, key=u.conv: outputs.setdefault(key, o)) for u in model.prunable_units()]
    with torch.no_grad():
        model(encode_direct(images, 2))
    functional.reset_net(model)
    for hook in hooks:
        hook.remove()
    for key, mask in masks.items():
        assert not outputs[key][:, :, ~mask].any()  # gamma = beta = 0: exactly zero whatever the statistics


def test_training_with_recalibration_evaluates_the_recalibrated_network():
    config = TrainConfig(keep_ratio=0.3, epochs=2, batch_size=128, bn_recalibrate=2,
                         model_kwargs={"widths": [8, 16, 16]})
    trainer = Trainer(config)
    history = trainer.run(None, None).history
    norm = next(iter(_norms(trainer.model).values()))
    assert int(norm.num_batches_tracked) == 2  # the last thing to touch the statistics was the recalibration
    assert history[-1].test_accuracy == pytest.approx(trainer.evaluate())
