"""Batch augmentation on tensors: random crop after zero padding, and horizontal flips, from one generator.

Working on whole batches keeps the data path free of DataLoader workers, so a seed fixes every draw.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def random_crop_flip(images: torch.Tensor, padding: int, flip: bool, generator: torch.Generator) -> torch.Tensor:
    """Shift each image `[N, C, H, W]` by up to `padding` pixels (zero fill) and mirror half of them if `flip`."""
    n, _, h, w = images.shape
    out = images
    if padding > 0:
        padded = F.pad(images, (padding, padding, padding, padding))
        dy = torch.randint(0, 2 * padding + 1, (n,), generator=generator)
        dx = torch.randint(0, 2 * padding + 1, (n,), generator=generator)
        rows = (dy[:, None] + torch.arange(h)[None, :]).to(images.device)  # [N, H]
        cols = (dx[:, None] + torch.arange(w)[None, :]).to(images.device)  # [N, W]
        batch = torch.arange(n, device=images.device)[:, None, None]
        # [N, H, W, C] gathered by advanced indexing, then back to [N, C, H, W]
        out = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)
    if flip:
        mirror = (torch.rand(n, generator=generator) < 0.5).to(images.device)
        out = torch.where(mirror[:, None, None, None], out.flip(-1), out)
    return out.contiguous()
