"""Event-camera style input made from still images: two polarities of thresholded frame differences.

A DVS pixel reports ON when its log brightness rises by more than a contrast threshold and OFF
when it falls. Sliding an image by one pixel per step and thresholding the difference of
consecutive frames gives the same kind of tensor, `[T, N, 2, H, W]` of 0/1 spikes (channel 0 ON,
channel 1 OFF), with nothing to download: the built-in `digits-events` data and the tests use it.
"""

from __future__ import annotations

import torch


def shifted_sequence(images: torch.Tensor, timesteps: int) -> torch.Tensor:
    """`[N, C, H, W]` -> `[T + 1, N, C, H, W]`: frame t is the image shifted right by t pixels (zero fill)."""
    frames = [images]
    for t in range(1, timesteps + 1):
        shifted = torch.zeros_like(images)
        shifted[..., t:] = images[..., : images.shape[-1] - t]
        frames.append(shifted)
    return torch.stack(frames)


def frames_to_events(images: torch.Tensor, timesteps: int, threshold: float = 0.25) -> torch.Tensor:
    """Binary ON/OFF events `[T, N, 2 * C, H, W]` (float32 0/1) of the image moving right one pixel per step."""
    frames = shifted_sequence(images.float(), timesteps)
    diff = frames[1:] - frames[:-1]
    return torch.cat([(diff > threshold), (diff < -threshold)], dim=2).float()
