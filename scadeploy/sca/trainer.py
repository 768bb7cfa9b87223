"""The SCA training loop: surrogate-gradient SGD with an L1 sub-gradient and one structure update per epoch.

Per epoch: train on every batch (recording channel activity at the prunable neurons, and
|dL/d gamma| over the last `grad_window` batches, or all of them for 0), step the lr schedule, then
recompute the masks from scratch and apply them once (conv filter, BN gamma and beta of pruned
channels set to 0), then (with `bn_recalibrate`) re-estimate the BN statistics, then evaluate.
`finetune` epochs follow with the masks frozen (re-applied after every step, so pruned weights stay
exactly zero), a fresh optimizer and a restarted lr decayed to 0 along a cosine, step by step.
NOTE: while a pruned channel's filter is exactly zero, dL/d gamma and dL/dW are exactly zero
(its BN input is zero); beta still trains but moves neither. Only the optimizer momentum kept from
before the pruning lets the filter and gamma drift, which is what makes the regrowth signal
non-zero; so the optimizer state is kept on purpose (`regrow_init` "reinit" restarts what regrows).
`warmup` epochs train dense before the first update. Loss: cross-entropy on the model's output, the
linear head of the time-mean spikes, blended with a teacher's soft targets when there is one.
Under `torchrun` the model is wrapped in DDP and every per-channel signal is all-reduced, so each
rank computes the same masks. This module never imports Lava (it sets the multiprocessing start
method at import, which breaks torch.distributed and DataLoader workers).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict

import torch
import torch.nn.functional as F
from spikingjelly.activation_based import functional
from spikingjelly.activation_based.neuron import BaseNode
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from scadeploy.data.datasets import NORMALIZATION, dataset_info, load_dataset
from scadeploy.frontends.checkpoint import Checkpoint
from scadeploy.frontends.masks import apply_masks, full_masks, prunable_units
from scadeploy.models import build_model, encode_direct
from scadeploy.sca import distributed
from scadeploy.sca.activity import ActivityRecorder, GammaGradRecorder, neuron_attrs
from scadeploy.sca.augment import random_crop_flip
from scadeploy.sca.config import ConfigError, EpochStats, TrainConfig, TrainResult
from scadeploy.sca.distill import Teacher, distillation_loss
from scadeploy.sca.recalibrate import recalibrate_batch_norm
from scadeploy.sca.regrow import reinit_channels
from scadeploy.sca.structure import mask_changes, ramped_budget, regrown_channels, select_masks
from scadeploy.sca.warm_start import load_initial_weights

EVAL_BATCH = 256
StepCallback = Callable[[int, int], None]  # (steps done, steps in all) on rank 0
EpochCallback = Callable[[EpochStats], None]


def train(config: TrainConfig, on_step: StepCallback | None = None,
          on_epoch: EpochCallback | None = None) -> TrainResult:
    """Train `config.model` on `config.dataset` with SCA (or dense when no keep ratio is set).

    Returns the last epoch's model as a Checkpoint with the final masks applied, plus the history.
    Reproducible for a given seed, device and number of processes.
    """
    config = config.resolved()
    if config.device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device '{config.device}' was asked for but CUDA is not available", "use --device cpu")
    device, created = distributed.setup(config.device)
    try:
        return Trainer(config, device).run(on_step, on_epoch)
    finally:
        distributed.teardown(created)


def model_kwargs(config: TrainConfig) -> dict:
    """The constructor arguments of the trained model, as stored in the checkpoint's arch."""
    (channels, size, _), num_classes = dataset_info(config.dataset)
    return {"num_classes": num_classes, "in_channels": channels, "input_size": size, "neuron": config.neuron,
            **config.model_kwargs}


def l1_subgradient(params: list[nn.Parameter], strength: float) -> None:
    """Add strength * sign(W) to the gradient of each weight (the L1 term of SCA's objective)."""
    if strength:
        with torch.no_grad():
            for p in params:
                if p.grad is not None:
                    p.grad.add_(torch.sign(p), alpha=strength)


class Trainer:
    """The state of one training run; `run()` drives it epoch by epoch, the steps are public for tests."""

    def __init__(self, config: TrainConfig, device: str = "cpu") -> None:
        config = config.resolved()
        self.config, self.device = config, device
        torch.manual_seed(config.seed)
        self.train_set = load_dataset(config.dataset, True, config.data_dir).tensors
        self.test_set = load_dataset(config.dataset, False, config.data_dir).tensors
        self.model = build_model(config.model, **model_kwargs(config))
        if config.init is not None:
            load_initial_weights(self.model, config.init, {"name": config.model, "kwargs": model_kwargs(config)},
                                 config.dataset)
        self.model = self.model.to(device)
        for module in self.model.modules():
            if isinstance(module, BaseNode):  # activity is replayed by hooks; v_seq storage is slow
                module.store_v_seq = False
        self.net = DistributedDataParallel(self.model) if distributed.is_distributed() else self.model
        self.optimizer = self._optimizer(config.lr)
        milestones = sorted({max(1, round(f * config.epochs)) for f in config.lr_milestones})
        self.scheduler = torch.optim.lr_scheduler.MultiStepLR(self.optimizer, milestones, gamma=0.1)
        self.frozen = False  # True in the fine-tuning phase: masks fixed and re-applied after every step
        self.teacher = self._teacher()
        self.regrow_generator = torch.Generator().manual_seed(config.seed + 7919)
        self.l1_params = [m.weight for m in self.model.modules()
                          if isinstance(m, nn.Conv2d) and tuple(m.kernel_size) == (3, 3)]
        self.budget = config.budget
        self.activity = ActivityRecorder(self.model, config.score) if self.budget else None
        self.gamma_grad = GammaGradRecorder(self.model)
        self.masks = full_masks(self.model)
        self.order_generator = torch.Generator().manual_seed(config.seed)
        self.augment_generator = torch.Generator().manual_seed(config.seed + 1 + distributed.rank())
        self.recalibrate_generator = torch.Generator().manual_seed(config.seed + 104729)

    def _optimizer(self, lr: float) -> torch.optim.SGD:
        return torch.optim.SGD(self.model.parameters(), lr=lr, momentum=self.config.momentum,
                               weight_decay=self.config.weight_decay)

    def _teacher(self) -> Teacher | None:
        cfg = self.config
        if cfg.teacher is None:
            return None
        input_shape, num_classes = dataset_info(cfg.dataset)
        teacher = Teacher(cfg.teacher, cfg.dataset, input_shape, num_classes, self.device)
        if not cfg.augment:  # the same images every epoch: one pass gives every soft target
            teacher.cache(self.train_set[0])
        return teacher

    def start_finetune(self) -> None:
        """Freeze the structure and restart the lr: fresh momentum, cosine decay to 0 over the fine-tune steps.

        Stepped per batch, so the last epoch ends at lr 0 instead of running at a quarter of the restart lr.
        """
        self.frozen = True
        apply_masks(self.model, self.masks)
        if self.activity is not None:  # no more structure updates: stop replaying the neurons
            self.activity.remove()
        self.optimizer = self._optimizer(self.config.finetune_lr)
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
            self.optimizer, T_max=self.config.finetune * self._steps_per_epoch())

    def run(self, on_step: StepCallback | None, on_epoch: EpochCallback | None) -> TrainResult:
        start = time.perf_counter()
        history = []
        for epoch in range(1, self.config.total_epochs + 1):
            t0 = time.perf_counter()
            if epoch == self.config.epochs + 1:
                self.start_finetune()
            lr = self.optimizer.param_groups[0]["lr"]
            loss, train_acc = self.train_epoch(epoch, on_step)
            if not self.frozen:  # the fine-tuning schedule steps per batch
                self.scheduler.step()
            changes = {"pruned": 0, "regrown": 0}
            if self.budget and not self.frozen and epoch > self.config.warmup:
                changes = self.update_structure(epoch - self.config.warmup)
            elif self.budget and not self.frozen:  # a dense warm-up epoch: its signals are not carried forward
                self.activity.reset()
                self.gamma_grad.reset()
            self.recalibrate()
            test_acc = self.evaluate()
            kept = {name: int(mask.sum()) for name, mask in self.masks.items()}
            stats = EpochStats(epoch, lr, loss, train_acc, test_acc, kept, sum(kept.values()),
                               sum(m.numel() for m in self.masks.values()), changes["pruned"], changes["regrown"],
                               time.perf_counter() - t0)
            history.append(stats)
            if on_epoch is not None and distributed.rank() == 0:
                on_epoch(stats)
        apply_masks(self.model, self.masks)  # the final mask: pruned channels exactly silent
        if self.activity is not None:
            self.activity.remove()
        seconds = time.perf_counter() - start
        return TrainResult(self.checkpoint(history, seconds), history, seconds)

    def _steps_per_epoch(self) -> int:
        per_rank = len(self.train_set[0]) // distributed.world_size()
        return -(-per_rank // self.config.batch_size)

    def train_epoch(self, epoch: int, on_step: StepCallback | None = None) -> tuple[float, float]:
        """One pass over this rank's share of the training set; returns (mean loss, accuracy %) over all ranks."""
        cfg = self.config
        steps = self._steps_per_epoch()
        images, labels = self.train_set
        order = distributed.shard(torch.randperm(len(images), generator=self.order_generator))
        self.net.train()
        totals = torch.zeros(3, dtype=torch.float64)  # loss sum, correct, count
        for step, batch in enumerate(order.split(cfg.batch_size)):
            x, y = images[batch], labels[batch]
            if cfg.augment:  # resolved: the recipe's default when not given
                x = random_crop_flip(x, cfg.recipe.crop_padding, cfg.recipe.flip, self.augment_generator)
            x, y = x.to(self.device), y.to(self.device)
            out = self.net(encode_direct(x, cfg.timesteps))
            loss = self.loss(out, y, x, batch)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            l1_subgradient(self.l1_params, cfg.l1)
            if not self.frozen and (cfg.grad_window == 0 or step >= steps - cfg.grad_window):
                self.gamma_grad.record()
            self.optimizer.step()
            if self.frozen:
                apply_masks(self.model, self.masks)
                self.scheduler.step()
            functional.reset_net(self.model)
            totals += torch.tensor([loss.item() * len(y), (out.argmax(1) == y).sum().item(), len(y)],
                                   dtype=torch.float64)
            if on_step is not None and distributed.rank() == 0:
                on_step((epoch - 1) * steps + step + 1, cfg.total_epochs * steps)
        loss_sum, correct, count = distributed.all_reduce_sum(totals.to(self.device)).tolist()
        return loss_sum / count, 100.0 * correct / count

    def loss(self, out: torch.Tensor, labels: torch.Tensor, images: torch.Tensor,
             indices: torch.Tensor) -> torch.Tensor:
        """Cross-entropy, blended with the teacher's soft targets when there is a teacher."""
        if self.teacher is None:
            return F.cross_entropy(out, labels)
        teacher = self.teacher.targets(images, indices)
        return distillation_loss(out, teacher, labels, self.config.kd_weight, self.config.kd_temperature)

    def update_structure(self, update: int | None = None) -> dict[str, int]:
        """Recompute the masks from this epoch's signals and apply them once; the optimizer state is kept.

        `update` (1-based) places this update on the ramp towards the target; None: the target itself.
        """
        budget = self.budget if update is None else ramped_budget(self.budget, update, self.config.ramp)
        new = select_masks(self.activity.scores(), self.gamma_grad.scores(), budget, self.config.floor,
                           self.masks, self.config.prune_only, self.config.ranking, self.config.min_keep)
        changes = mask_changes(self.masks, new)
        old, self.masks = self.masks, new
        apply_masks(self.model, self.masks)
        if self.config.regrow_init == "reinit":
            reinit_channels(self.model, self.optimizer, regrown_channels(old, new), self.regrow_generator)
        self.activity.reset()
        self.gamma_grad.reset()
        return changes

    def recalibrate(self) -> None:
        """Re-estimate the BN statistics for the weights and masks as they are now (`bn_recalibrate` batches)."""
        cfg = self.config
        if cfg.bn_recalibrate:
            recalibrate_batch_norm(self.model, self.train_set[0], cfg.timesteps, cfg.batch_size, cfg.bn_recalibrate,
                                   self.recalibrate_generator, self.device)

    @torch.no_grad()
    def evaluate(self) -> float:
        """Test accuracy (%) of the model as it is now (masks applied), over all ranks' shares."""
        distributed.broadcast_buffers(self.model)
        images, labels = self.test_set
        mine = torch.arange(len(images))[distributed.rank()::distributed.world_size()]
        self.model.eval()
        correct = 0
        for batch in mine.split(EVAL_BATCH):
            out = self.model(encode_direct(images[batch].to(self.device), self.config.timesteps))
            correct += int((out.argmax(1).cpu() == labels[batch]).sum())
            functional.reset_net(self.model)
        counts = distributed.all_reduce_sum(torch.tensor([correct, len(mine)], dtype=torch.float64,
                                                         device=self.device))
        return 100.0 * float(counts[0] / counts[1])

    def checkpoint(self, history: list[EpochStats], seconds: float) -> Checkpoint:
        """The model as it is now, with its masks, the resolved config and the history in meta."""
        cfg = self.config
        input_shape, num_classes = dataset_info(cfg.dataset)
        modules = dict(self.model.named_modules())
        units = prunable_units(self.model)
        attrs = asdict(neuron_attrs(modules[units[0].neuron])) if units else {}
        best = max(history, key=lambda h: h.test_accuracy)
        kept, total = history[-1].kept_total, history[-1].channels_total
        normalization = NORMALIZATION.get(cfg.dataset)
        meta = {
            "dataset": cfg.dataset,
            "data_dir": str(cfg.data_dir) if cfg.data_dir is not None else None,
            "normalization": None if normalization is None else {"mean": list(normalization[0]),
                                                                 "std": list(normalization[1])},
            "method": "dense" if self.budget is None else ("prune_only" if cfg.prune_only else "sca"),
            "accuracy": {"best": best.test_accuracy, "best_epoch": best.epoch, "last": history[-1].test_accuracy},
            "keep_ratio": kept / total if total else 1.0,
            "alpha": None if self.budget is None else self.budget.alpha,
            "beta": None if self.budget is None else self.budget.beta,
            "config": cfg.to_dict(),
            "history": [h.to_dict() for h in history],
            "seconds": seconds,
        }
        state = {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}
        masks = {k: v.clone() for k, v in self.masks.items()}
        return Checkpoint({"name": cfg.model, "kwargs": model_kwargs(cfg)}, state, masks, cfg.timesteps,
                          input_shape, num_classes, neuron={**attrs, "kind": attrs["kind"].value} if attrs else {},
                          meta=meta)
