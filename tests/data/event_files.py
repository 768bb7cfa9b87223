"""Event recordings as tonic gives them, made from scikit-learn's digits (nothing is downloaded).

Every pixel brighter than a threshold emits a few events at random times within a window, each with a
random polarity: one structured array (tonic's dtype) per sample, sorted by time.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from scadeploy.data import load_dataset
from scadeploy.data.events import TONIC_DTYPE

SENSOR = (8, 8, 2)  # tonic's order: width, height, polarities


def image_to_recording(image: np.ndarray, rng: np.random.Generator, threshold: float = 0.3,
                       window_us: int = 10_000, per_pixel: int = 3) -> np.ndarray:
    """One recording from an [H, W] image in [0, 1]: brighter pixels emit more events."""
    ys, xs = np.nonzero(image > threshold)
    counts = np.ceil(image[ys, xs] * per_pixel).astype(int)
    events = np.zeros(int(counts.sum()), dtype=TONIC_DTYPE)
    events["x"], events["y"] = np.repeat(xs, counts), np.repeat(ys, counts)
    events["t"] = rng.integers(0, window_us, events.size)
    events["p"] = rng.random(events.size) < 0.5
    return np.sort(events, order="t", kind="stable")


def digits_recordings(count: int = 24, seed: int = 0) -> tuple[list[np.ndarray], np.ndarray]:
    """(recordings, labels) of the first `count` digits of the test split."""
    images, labels = load_dataset("digits", train=False).tensors[:2]
    rng = np.random.default_rng(seed)
    recordings = [image_to_recording(image[0].numpy(), rng) for image in images[:count]]
    return recordings, labels[:count].numpy()


def save_npz(path: Path, recordings: list[np.ndarray], labels: np.ndarray | None = None) -> Path:
    """One array per recording (arr_0, arr_1, ... in order) and the labels under y."""
    np.savez(path, *recordings, **({} if labels is None else {"y": labels}))
    return path
