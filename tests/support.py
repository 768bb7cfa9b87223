"""Helpers shared by the tests: models with realistic BN statistics, and checkpoints on disk."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from scadeploy.frontends.checkpoint import Checkpoint, save_checkpoint
from scadeploy.frontends.masks import apply_masks, random_masks
from scadeploy.models import build_model, randomize_batchnorm

INPUT_SHAPES = {"digits": (1, 8, 8), "vgg16": (3, 32, 32), "vgg_mnist": (1, 28, 28), "resnet18": (3, 32, 32)}


def masked_model(name: str, keep: float, neuron: str = "if", seed: int = 0, **kwargs) -> tuple[nn.Module, dict]:
    """A reference model with random SCA-style masks applied (filter, gamma and beta zeroed)."""
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = randomize_batchnorm(build_model(name, neuron=neuron, **kwargs), generator).eval()
    masks = random_masks(model, keep, generator)
    apply_masks(model, masks)
    return model, masks


def write_checkpoint(path: Path, name: str = "digits", keep: float = 0.3, neuron: str = "if", seed: int = 0,
                     timesteps: int = 4, **kwargs) -> Path:
    model, masks = masked_model(name, keep, neuron, seed, **kwargs)
    arch = {"name": name, "kwargs": {"neuron": neuron, **kwargs}}
    shape = INPUT_SHAPES[name] if "input_size" not in kwargs else (INPUT_SHAPES[name][0], kwargs["input_size"],
                                                                     kwargs["input_size"])
    save_checkpoint(Checkpoint(arch, model.state_dict(), masks, timesteps, shape, 10), path)
    return path


def invoke(*args: str):
    """Run the CLI in-process; the result has exit_code, stdout and stderr."""
    from click.testing import CliRunner

    from scadeploy.cli import main

    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def compiled_digits(root: Path, targets: tuple[str, ...] = ("onnx-cpu",)) -> tuple[Path, Path]:
    """A digits checkpoint (keep 0.3) and its compile output directory under `root`."""
    from scadeploy.compiler import compile_checkpoint

    source = write_checkpoint(root / "d.pt", keep=0.3)
    compile_checkpoint(source, root / "out", targets)
    return source, root / "out"
