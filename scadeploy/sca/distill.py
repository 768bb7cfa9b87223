"""Knowledge distillation from a trained (dense) teacher: Hinton et al.'s soft-target loss.

loss = (1 - w) * CE(student, labels) + w * T^2 * KL(softmax(teacher / T) || softmax(student / T)).
The T^2 keeps the soft term's gradient on the scale of the hard one (Hinton, Vinyals & Dean, 2015).
The teacher runs in eval mode with its own time steps and never trains. Without augmentation every
training image is the same each epoch, so its logits are computed once (one pass, no gradients)
and looked up by index; with augmentation they are computed per batch on the augmented images.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from spikingjelly.activation_based import functional
from torch import nn

from scadeploy.frontends.checkpoint import load_checkpoint
from scadeploy.models import encode_direct
from scadeploy.sca.config import ConfigError

TEACHER_BATCH = 256


class Teacher:
    """A checkpoint's model, frozen, that gives soft targets for a student trained on the same task."""

    def __init__(self, path: str | Path, dataset: str, input_shape: tuple[int, ...], num_classes: int,
                 device: str = "cpu") -> None:
        ckpt = load_checkpoint(path)  # weights only; a foreign file is a CheckpointError
        teacher_dataset = ckpt.meta.get("dataset")
        if teacher_dataset not in (None, dataset):
            raise ConfigError(f"teacher '{path}' was trained on {teacher_dataset}, the student trains on {dataset}",
                              "distil from a model of the same dataset")
        if tuple(ckpt.input_shape) != tuple(input_shape) or ckpt.num_classes != num_classes:
            raise ConfigError(f"teacher '{path}' takes {tuple(ckpt.input_shape)} -> {ckpt.num_classes} classes, "
                              f"the student {tuple(input_shape)} -> {num_classes}",
                              "distil from a model of the same task")
        self.model: nn.Module = ckpt.build().to(device)
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.timesteps = ckpt.timesteps
        self.device = device
        self.cached: torch.Tensor | None = None

    @torch.no_grad()
    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """Teacher logits [N, classes] for analog frames [N, C, H, W] (direct encoding, the teacher's T)."""
        self.model.eval()
        out = [self._forward(chunk.to(self.device)) for chunk in images.split(TEACHER_BATCH)]
        return torch.cat(out)

    def _forward(self, images: torch.Tensor) -> torch.Tensor:
        out = self.model(encode_direct(images, self.timesteps))
        functional.reset_net(self.model)
        return out

    def cache(self, images: torch.Tensor) -> None:
        """Compute the logits of a fixed training set once; `targets(indices=...)` then reads them."""
        self.cached = self.logits(images)

    def targets(self, images: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        """Soft-target logits of a batch: from the cache when there is one, else computed on `images`."""
        if self.cached is not None:
            return self.cached[indices].to(self.device)
        return self.logits(images)


def distillation_loss(student: torch.Tensor, teacher: torch.Tensor, labels: torch.Tensor, weight: float,
                      temperature: float) -> torch.Tensor:
    """Hard cross-entropy blended with the temperature-softened KL divergence to the teacher."""
    hard = F.cross_entropy(student, labels)
    soft = F.kl_div(F.log_softmax(student / temperature, dim=1), F.log_softmax(teacher / temperature, dim=1),
                    reduction="batchmean", log_target=True)
    return (1.0 - weight) * hard + weight * temperature**2 * soft
