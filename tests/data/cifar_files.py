"""Tiny CIFAR-10/100 directories in the official python-version format, written by the tests."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np


def _batch(rng: np.random.Generator, count: int, label_key: bytes, classes: int) -> dict:
    data = rng.integers(0, 256, size=(count, 3 * 32 * 32), dtype=np.uint8)
    return {b"batch_label": b"tiny", b"data": data, label_key: [int(v) for v in rng.integers(0, classes, count)]}


def write_cifar(root: Path, name: str = "cifar10", per_file: int = 4, seed: int = 0) -> Path:
    """`root/<official sub-directory>` with every batch file holding `per_file` random images."""
    rng = np.random.default_rng(seed)
    if name == "cifar10":
        files = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
        folder, key, classes = "cifar-10-batches-py", b"labels", 10
    else:
        files = ["train", "test"]
        folder, key, classes = "cifar-100-python", b"fine_labels", 100
    directory = Path(root) / folder
    directory.mkdir(parents=True, exist_ok=True)
    for file in files:
        with open(directory / file, "wb") as f:
            pickle.dump(_batch(rng, per_file, key, classes), f)
    return directory
