"""The training loop: soft masking once per update, momentum kept, seeds, final masks, CIFAR end to end."""

from __future__ import annotations

import pytest
import torch
from data.cifar_files import write_cifar

from scadeploy.frontends.checkpoint import load_checkpoint, save_checkpoint
from scadeploy.sca import TrainConfig, train
from scadeploy.sca.config import ConfigError
from scadeploy.sca.structure import select_masks
from scadeploy.sca.trainer import Trainer

SMALL = TrainConfig(keep_ratio=0.3, epochs=3, batch_size=128, model_kwargs={"widths": [8, 16, 16]})


def _pruned_params(model, masks):
    modules = dict(model.named_modules())
    for unit in model.prunable_units():
        pruned = ~masks[unit.conv]
        yield modules[unit.conv].weight[pruned], modules[unit.bn].weight[pruned], modules[unit.bn].bias[pruned]


def test_update_recomputes_masks_applies_them_once_and_keeps_momentum():
    trainer = Trainer(SMALL)
    for epoch in (1, 2):
        trainer.train_epoch(epoch)
        expected = select_masks(trainer.activity.scores(), trainer.gamma_grad.scores(), trainer.budget,
                                previous=trainer.masks, ranking=trainer.config.ranking)
        momentum = {id(p): trainer.optimizer.state[p]["momentum_buffer"].clone() for p in trainer.model.parameters()}
        trainer.update_structure()
        assert all(torch.equal(trainer.masks[k], expected[k]) for k in expected)  # from this epoch's scores
        assert sum(int(m.sum()) for m in trainer.masks.values()) >= int(0.1 * 40) + int(0.2 * 40)
        assert all(bool(m.any()) for m in trainer.masks.values())  # the floor
        for p in trainer.model.parameters():  # the optimizer state survives the update untouched
            assert torch.equal(trainer.optimizer.state[p]["momentum_buffer"], momentum[id(p)])
        for weight, gamma, beta in _pruned_params(trainer.model, trainer.masks):
            assert not weight.any() and not gamma.any() and not beta.any()
        assert trainer.activity.counts["features.conv1"] == 0  # the running mean restarts
    trainer.train_epoch(3)  # masks are not enforced per step: momentum and beta's gradient move pruned channels
    drift = [float(beta.detach().abs().sum()) for _, _, beta in _pruned_params(trainer.model, trainer.masks)]
    assert sum(drift) > 0


def test_same_seed_same_run_and_final_masks_silent(tmp_path):
    first, second = train(SMALL), train(SMALL)
    assert [h.loss for h in first.history] == [h.loss for h in second.history]
    for key, value in first.checkpoint.state_dict.items():
        assert torch.equal(value, second.checkpoint.state_dict[key]), key
    other = train(TrainConfig(**{**SMALL.__dict__, "seed": 1}))
    assert [h.loss for h in other.history] != [h.loss for h in first.history]
    ckpt = load_checkpoint(save_checkpoint(first.checkpoint, tmp_path / "digits.pt"))
    model = ckpt.build()
    for weight, gamma, beta in _pruned_params(model, ckpt.masks):
        assert not weight.any() and not gamma.any() and not beta.any()
    assert ckpt.meta["dataset"] == "digits" and ckpt.meta["method"] == "sca"
    assert ckpt.meta["accuracy"]["last"] == first.history[-1].test_accuracy
    assert ckpt.arch == {"name": "digits", "kwargs": {"num_classes": 10, "in_channels": 1, "input_size": 8,
                                                      "neuron": "if", "widths": [8, 16, 16]}}
    kept = sum(int(m.sum()) for m in ckpt.masks.values())
    assert kept == first.history[-1].kept_total and ckpt.meta["keep_ratio"] == pytest.approx(kept / 40)
    assert len(ckpt.meta["history"]) == 3


def test_prune_only_masks_only_shrink():
    trainer = Trainer(TrainConfig(**{**SMALL.__dict__, "prune_only": True}))
    previous = trainer.masks
    for epoch in (1, 2):
        trainer.train_epoch(epoch)
        trainer.update_structure()
        for name, mask in trainer.masks.items():
            assert not bool((mask & ~previous[name]).any())
        previous = trainer.masks


def test_dense_run_keeps_every_channel():
    result = train(TrainConfig(epochs=1, batch_size=128, model_kwargs={"widths": [4, 8, 8]}))
    assert all(bool(m.all()) for m in result.masks.values())
    assert result.checkpoint.meta["method"] == "dense" and result.checkpoint.meta["keep_ratio"] == 1.0


@pytest.mark.parametrize("options, message", [
    ({"keep_ratio": 1.5}, "not in"),
    ({"alpha": 0.1}, "go together"),
    ({"keep_ratio": 0.5, "alpha": 0.1, "beta": 0.1}, "contradicts"),
    ({"neuron": "izhikevich"}, "unknown neuron"),
    ({"floor": 0}, "floor"),
])
def test_bad_options_are_config_errors(options, message):
    with pytest.raises(ConfigError, match=message):
        train(TrainConfig(**options))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_training_runs():
    result = train(TrainConfig(**{**SMALL.__dict__, "epochs": 1, "device": "cuda"}))
    assert result.checkpoint.state_dict["features.conv1.weight"].device.type == "cpu"


def test_cuda_unavailable_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(ConfigError, match="CUDA is not available"):
        train(TrainConfig(device="cuda"))


@pytest.mark.parametrize("model, dataset, kwargs", [
    ("vgg16", "cifar10", {"widths": [4] * 13, "hidden": 16}),
    ("resnet18", "cifar100", {"stage_widths": [4, 8, 8, 8], "block_widths": [4] * 8}),
])
def test_cifar_files_end_to_end(tmp_path, model, dataset, kwargs):
    write_cifar(tmp_path, dataset, per_file=4)
    config = TrainConfig(model=model, dataset=dataset, data_dir=str(tmp_path), keep_ratio=0.3, epochs=1,
                         batch_size=4, model_kwargs=kwargs)
    result = train(config)
    ckpt = load_checkpoint(save_checkpoint(result.checkpoint, tmp_path / "model.pt"))
    assert ckpt.input_shape == (3, 32, 32) and ckpt.num_classes == (10 if dataset == "cifar10" else 100)
    assert ckpt.meta["normalization"]["mean"][0] == pytest.approx(0.4914 if dataset == "cifar10" else 0.5071)
    total = sum(m.numel() for m in ckpt.masks.values())
    assert sum(int(m.sum()) for m in ckpt.masks.values()) >= int(0.3 * total)
    assert len(ckpt.masks) == (13 if model == "vgg16" else 8)
    ckpt.build()  # the weights fit the stored architecture


def test_warmup_epochs_train_dense_then_prune():
    result = train(TrainConfig(keep_ratio=0.3, epochs=3, warmup=2, batch_size=128,
                               model_kwargs={"widths": [4, 8, 8]}))
    assert [h.kept_total for h in result.history[:2]] == [20, 20]  # dense while warming up
    assert result.history[2].kept_total < 20 and result.history[2].pruned > 0


@pytest.mark.parametrize("dataset, augment", [("digits", False), ("mnist5k", False), ("cifar10", True)])
def test_augmentation_default_is_the_recipe(dataset, augment):
    assert TrainConfig(dataset=dataset).resolved().augment is augment
    assert TrainConfig(dataset=dataset, augment=not augment).resolved().augment is (not augment)


@pytest.mark.parametrize("options, message", [
    ({"ranking": "raw"}, "unknown ranking"),
    ({"min_keep": 1.0}, "minimum kept fraction"),
    ({"warmup": 3, "epochs": 3}, "warm-up"),
    ({"warmup": -1}, "warm-up"),
    ({"ramp": -1}, "ramp must be"),
])
def test_recipe_controls_are_checked(options, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(keep_ratio=0.3, **options).resolved()


def test_finetune_freezes_the_structure_restarts_the_lr_and_keeps_pruned_weights_zero():
    config = TrainConfig(keep_ratio=0.3, epochs=2, finetune=2, finetune_lr=0.02, batch_size=128,
                         model_kwargs={"widths": [8, 16, 16]})
    trainer = Trainer(config)
    history = trainer.run(None, None).history
    assert [h.epoch for h in history] == [1, 2, 3, 4]
    assert history[2].lr == pytest.approx(0.02) and history[3].lr < history[2].lr  # restarted, then cosine
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)  # decayed per step, to 0
    assert [h.pruned + h.regrown for h in history[2:]] == [0, 0]  # no structure update while fine-tuning
    assert history[2].kept == history[1].kept == history[3].kept
    for weight, gamma, beta in _pruned_params(trainer.model, trainer.masks):
        assert not weight.any() and not gamma.any() and not beta.any()  # held at zero after every step


def test_reinit_restarts_what_regrows():
    config = TrainConfig(**{**SMALL.__dict__, "regrow_init": "reinit"})
    trainer = Trainer(config)
    trainer.train_epoch(1)
    trainer.update_structure()
    old = trainer.masks
    trainer.train_epoch(2)
    trainer.update_structure()
    modules = dict(trainer.model.named_modules())
    for unit in trainer.model.prunable_units():
        regrown = trainer.masks[unit.conv] & ~old[unit.conv]
        if regrown.any():
            assert bool((modules[unit.bn].weight[regrown] == 1).all())
            assert bool(modules[unit.conv].weight[regrown].abs().sum(dim=(1, 2, 3)).gt(0).all())


@pytest.mark.parametrize("options, message", [
    ({"finetune": -1}, "fine-tuning must be"),
    ({"finetune_lr": 0.0}, "fine-tuning learning rate"),
    ({"kd_weight": 1.5}, "distillation weight"),
    ({"kd_temperature": 0.0}, "distillation temperature"),
    ({"regrow_init": "random"}, "unknown regrow_init"),
    ({"bn_recalibrate": -1}, "BN recalibration must be"),
])
def test_options_beyond_the_paper_are_checked(options, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(keep_ratio=0.3, **options).resolved()
