"""What a training run is asked to do (TrainConfig), per-dataset recipe defaults, and what it returns.

The paper's recipe (SGD momentum 0.9, lr 0.01, step x0.1 at 1/3 and 2/3 of 300 epochs, batch 64,
flip + crop(pad 4), L1 3e-5) is the CIFAR default. DECISION: digits trains for 40 epochs at lr 0.05
with the same step schedule scaled to 40 epochs and a 1-pixel shift as its only augmentation
(flipping digits changes their class): a 300-epoch recipe at lr 0.01 does not converge in the
few epochs that keep a digits run within minutes on two CPU cores, and lr 0.1 made the channels
that SCA prunes and regrows drift so far within an epoch that the pruned network lost 2-3 points
more than at 0.05 (digits widths 32-64-64, keep 0.3, one seed). DECISION: digits sums |dL/d gamma|
over every batch of the epoch (`grad_window` 0) instead of the paper's last batch: with 22 batches
an epoch, one batch's gradient is a noisy regrowth signal; over three seeds the whole-epoch window
lifted SCA-30% from 96.4% to 97.6% (dense: 99.5%).

Recipe controls beyond the paper (each a TrainConfig field and a `scadeploy train` flag; measured in
benchmarks/sca_study.py, results in benchmarks/results/sca_study.md and the README):
- `ranking`: "paper" ranks raw scores across layers; "layer_mean" divides each layer's activity and
  |dL/d gamma| by the layer's mean first (per-layer normalisation of a pruning criterion, as in
  Molchanov et al., ICLR 2017). DECISION: "layer_mean" is the default: the raw ranking starves
  layers whose inputs were pruned (a review measured 88.2% -> 93.1% at keep 0.2 on digits).
- `min_keep`: a per-layer minimum fraction of channels (per-layer pruning-ratio bounds, as in AMC,
  He et al., ECCV 2018); `floor` is the same in channels.
- `warmup`: dense epochs before the first update (dense pre-training of train-prune-fine-tune,
  Han et al., NeurIPS 2015). Measured worse on digits (86.0% against 88.2%), so 0 by default.
- `ramp`: the kept fraction falls from 1 to the target over that many updates along the cubic
  schedule of Zhu & Gupta (2017) instead of the paper's fixed target from the first update.
- `augment`: DECISION: off by default for digits and mnist5k. On 8x8 digits the 1-pixel shift
  moves 12.5% of the image; without it a review measured SCA at keep 0.2 94.2% against 88.2%.
- `finetune`: epochs after the `epochs` of structure learning in which the masks are frozen, the
  pruned weights held at exactly zero after every step, and the learning rate restarted (fresh
  momentum, cosine decay to 0 step by step), so the final widths are trained as such (the fine-tune phase of
  train-prune-fine-tune, Han et al., 2015). 0 is the paper's: the structure changes until the end.
- `teacher`, `kd_weight`, `kd_temperature`: distillation from a trained checkpoint (distill.py).
- `regrow_init`: "momentum" (the paper's) or "reinit" (regrow.py).
- `init`: the run starts from a trained checkpoint's weights, e.g. the dense model (warm_start.py).
- `bn_recalibrate`: BN statistics re-estimated on that many training batches before every
  evaluation, so the evaluated and the saved network carry the statistics of its current weights
  and masks (recalibrate.py). 0 is the paper's: the running averages of training.
Measured in benchmarks/sca_beyond.py (benchmarks/results/sca_beyond.md).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace

from scadeploy.data.datasets import DATASETS
from scadeploy.errors import ScadeployError
from scadeploy.frontends.checkpoint import Checkpoint
from scadeploy.models import MODELS, NEURON_KINDS
from scadeploy.sca.activity import SCORES
from scadeploy.sca.regrow import REGROW_INITS
from scadeploy.sca.structure import RANKINGS, Budget, default_budget


class ConfigError(ScadeployError):
    """A training option is out of range or contradicts another."""


@dataclass(frozen=True)
class Recipe:
    """Dataset-dependent defaults: epochs, learning rate, augmentation (crop padding, flips), gradient window."""

    epochs: int
    lr: float
    crop_padding: int
    flip: bool
    grad_window: int  # last batches of an epoch whose |dL/d gamma| is summed; 0 = every batch
    augment: bool = True  # crop (and flip) the training images


RECIPES = {
    "digits": Recipe(epochs=40, lr=0.05, crop_padding=1, flip=False, grad_window=0, augment=False),
    "mnist5k": Recipe(epochs=8, lr=0.05, crop_padding=2, flip=False, grad_window=0, augment=False),
    "cifar10": Recipe(epochs=300, lr=0.01, crop_padding=4, flip=True, grad_window=1),
    "cifar100": Recipe(epochs=300, lr=0.01, crop_padding=4, flip=True, grad_window=1),
}


@dataclass(frozen=True)
class TrainConfig:
    """One SCA (or dense) training run. `None` means the dataset's recipe default.

    keep_ratio None or 1.0 trains the dense model (no structure updates); alpha and beta, when
    given, replace the default split of the keep ratio (keep = alpha + beta).
    """

    model: str = "digits"
    dataset: str = "digits"
    data_dir: str | None = None
    keep_ratio: float | None = None
    alpha: float | None = None
    beta: float | None = None
    epochs: int | None = None
    timesteps: int = 4
    neuron: str = "if"
    seed: int = 0
    batch_size: int = 64
    lr: float | None = None
    momentum: float = 0.9
    weight_decay: float = 0.0
    lr_milestones: tuple[float, ...] = (1 / 3, 2 / 3)  # fractions of the epochs where lr is multiplied by 0.1
    l1: float = 3e-5
    score: str = "spike_v"
    grad_window: int | None = None  # 0 = every batch of the epoch
    prune_only: bool = False
    floor: int = 1
    ranking: str = "layer_mean"  # see RANKINGS in structure.py; "paper" is the published rule
    min_keep: float = 0.0  # fraction of every prunable layer's channels it keeps at least
    warmup: int = 0  # dense epochs before the first structure update
    ramp: int = 0  # structure updates over which the kept fraction falls from 1 to the target (0: at once)
    augment: bool | None = None  # None: the dataset's recipe
    finetune: int = 0  # epochs after `epochs` with the structure frozen and the lr restarted
    finetune_lr: float | None = None  # None: the run's initial lr
    teacher: str | None = None  # checkpoint whose logits are distilled into the student
    kd_weight: float = 0.5  # share of the distillation term in the loss (with a teacher)
    kd_temperature: float = 4.0
    regrow_init: str = "momentum"  # see REGROW_INITS in regrow.py; "momentum" is the paper's
    init: str | None = None  # checkpoint of the same model whose weights the run starts from (None: random)
    bn_recalibrate: int = 0  # training batches that re-estimate BN statistics before each evaluation (0: none)
    device: str = "cpu"
    model_kwargs: dict = field(default_factory=dict)  # e.g. smaller widths for tests

    @property
    def recipe(self) -> Recipe:
        return RECIPES[self.dataset]

    @property
    def total_epochs(self) -> int:
        """Structure-learning epochs plus fine-tuning epochs (resolved configs only)."""
        return self.epochs + self.finetune

    @property
    def budget(self) -> Budget | None:
        """(alpha, beta) of a pruned run, None for a dense one."""
        if self.alpha is not None and self.beta is not None:
            return Budget(self.alpha, self.beta)
        if self.keep_ratio is None or self.keep_ratio >= 1.0:
            return None
        return default_budget(self.keep_ratio)

    def resolved(self) -> TrainConfig:
        """A copy with recipe defaults filled in, after checking every option."""
        self.validate()
        return replace(self, epochs=self.epochs if self.epochs is not None else self.recipe.epochs,
                       lr=self.lr if self.lr is not None else self.recipe.lr,
                       finetune_lr=self.finetune_lr if self.finetune_lr is not None else
                       (self.lr if self.lr is not None else self.recipe.lr),
                       grad_window=self.grad_window if self.grad_window is not None else self.recipe.grad_window,
                       augment=self.augment if self.augment is not None else self.recipe.augment)

    def validate(self) -> None:
        choices = {"model": MODELS, "dataset": DATASETS, "neuron": NEURON_KINDS, "score": SCORES,
                   "ranking": RANKINGS, "regrow_init": REGROW_INITS}
        checks = [(getattr(self, key) in options, f"unknown {key} '{getattr(self, key)}'",
                   f"choose one of {', '.join(options)}") for key, options in choices.items()]
        checks += [
            (self.keep_ratio is None or 0.0 < self.keep_ratio <= 1.0, f"keep ratio {self.keep_ratio} is not in (0, 1]",
             "e.g. 0.3 keeps 30% of the prunable channels"),
            ((self.alpha is None) == (self.beta is None), "alpha and beta go together", "give both or neither"),
            (self.epochs is None or self.epochs >= 1, f"epochs must be at least 1, got {self.epochs}", None),
            (self.timesteps >= 1, f"timesteps must be at least 1, got {self.timesteps}", None),
            (self.batch_size >= 2, f"batch size must be at least 2 (batch norm), got {self.batch_size}", None),
            (self.lr is None or self.lr > 0, f"learning rate must be positive, got {self.lr}", None),
            (self.grad_window is None or self.grad_window >= 0,
             f"gradient window must be 0 (every batch) or a number of batches, got {self.grad_window}", None),
            (self.floor >= 1, f"floor must keep at least 1 channel per layer, got {self.floor}", None),
            (0.0 <= self.min_keep < 1.0, f"minimum kept fraction per layer must be in [0, 1), got {self.min_keep}",
             "e.g. 0.05 keeps at least 5% of every layer's channels"),
            (self.warmup >= 0 and (self.epochs is None or self.warmup < self.epochs),
             f"warm-up must be 0 or more epochs and fewer than the {self.epochs} epochs, got {self.warmup}",
             "the structure needs at least one update after the warm-up"),
            (self.ramp >= 0, f"ramp must be 0 (the target at once) or a number of updates, got {self.ramp}", None),
            (self.bn_recalibrate >= 0,
             f"BN recalibration must be 0 (none) or a number of batches, got {self.bn_recalibrate}", None),
            (self.finetune >= 0, f"fine-tuning must be 0 or more epochs, got {self.finetune}", None),
            (self.finetune_lr is None or self.finetune_lr > 0,
             f"fine-tuning learning rate must be positive, got {self.finetune_lr}", None),
            (0.0 <= self.kd_weight <= 1.0, f"distillation weight must be in [0, 1], got {self.kd_weight}",
             "0 trains on the labels only, 1 on the teacher only"),
            (self.kd_temperature > 0, f"distillation temperature must be positive, got {self.kd_temperature}",
             "e.g. 4"),
            (self.device == "cpu" or self.device.startswith("cuda"), f"unknown device '{self.device}'",
             "use cpu or cuda"),
        ]
        for ok, message, hint in checks:
            if not ok:
                raise ConfigError(message, hint)
        if self.alpha is not None:
            self._check_split()

    def _check_split(self) -> None:
        if self.alpha < 0 or self.beta < 0 or not 0 < self.alpha + self.beta <= 1:
            raise ConfigError(f"alpha {self.alpha} and beta {self.beta} must be >= 0 with 0 < alpha + beta <= 1")
        if self.keep_ratio is not None and not math.isclose(self.keep_ratio, self.alpha + self.beta):
            raise ConfigError(f"keep ratio {self.keep_ratio} contradicts alpha + beta = {self.alpha + self.beta}",
                              "give the keep ratio or alpha and beta")

    def to_dict(self) -> dict:
        return asdict(self) | {"lr_milestones": list(self.lr_milestones)}


@dataclass
class EpochStats:
    """One epoch: loss and accuracies (%), channels kept per layer, and what the structure update changed."""

    epoch: int
    lr: float
    loss: float
    train_accuracy: float
    test_accuracy: float
    kept: dict[str, int]
    kept_total: int
    channels_total: int
    pruned: int
    regrown: int
    seconds: float

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class TrainResult:
    """The final checkpoint (last epoch's weights, final masks applied) and the per-epoch history."""

    checkpoint: Checkpoint
    history: list[EpochStats]
    seconds: float

    @property
    def masks(self) -> dict:
        return self.checkpoint.masks

    def summary(self) -> dict:
        meta = self.checkpoint.meta
        return {"accuracy": meta["accuracy"], "keep_ratio": meta["keep_ratio"],
                "kept": self.history[-1].kept, "kept_total": self.history[-1].kept_total,
                "channels_total": self.history[-1].channels_total, "seconds": round(self.seconds, 2),
                "history": [h.to_dict() for h in self.history]}
