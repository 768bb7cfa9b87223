"""A run that starts from a trained checkpoint's weights instead of a random initialisation.

Why: pruning a trained network and fine-tuning it (train-prune-fine-tune, Han et al., NeurIPS 2015)
gives SCA's first structure update the activity of channels that have learnt something, and the
channels it keeps start from trained filters. The dense model a study trains anyway (it is also
the distillation teacher) is the natural start. Measured on vgg_mnist_wide, mnist5k, keep 0.1:
starting from the dense checkpoint lifted the last-epoch accuracy of two seeds from 92.4 and 90.5
to 93.4 and 93.3 (benchmarks/sca_beyond.py, `sca-best` against `no-init`).
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from scadeploy.frontends.checkpoint import load_checkpoint
from scadeploy.sca.config import ConfigError


def load_initial_weights(model: nn.Module, path: str | Path, arch: dict, dataset: str) -> None:
    """Copy the weights (and BN statistics) of the checkpoint at `path` into `model`, which must be the same arch."""
    ckpt = load_checkpoint(path)  # weights only; a foreign file is a CheckpointError
    if ckpt.meta.get("dataset") not in (None, dataset):
        raise ConfigError(f"initial checkpoint '{path}' was trained on {ckpt.meta['dataset']}, this run trains on "
                          f"{dataset}", "start from a checkpoint of the same dataset")
    if ckpt.arch.get("name") != arch["name"] or ckpt.arch.get("kwargs", {}) != arch["kwargs"]:
        raise ConfigError(f"initial checkpoint '{path}' is a {_describe(ckpt.arch)}, this run trains a "
                          f"{_describe(arch)}", "start from a checkpoint of the same model, widths and neuron")
    model.load_state_dict(ckpt.state_dict)


def _describe(arch: dict) -> str:
    kwargs = ", ".join(f"{k}={v}" for k, v in sorted(arch.get("kwargs", {}).items()))
    return f"{arch.get('name')}({kwargs})"
