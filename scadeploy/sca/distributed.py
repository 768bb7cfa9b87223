"""torch.distributed plumbing for training under `torchrun`: set-up, all-reduce, sharding, buffer sync.

Every helper is a no-op in a single process, so the training loop has one code path.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist
from torch import nn


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def rank() -> int:
    """This process's rank; before set-up and after teardown, the one `torchrun` gave it (else 0)."""
    return dist.get_rank() if is_distributed() else int(os.environ.get("RANK", "0"))


def setup(device: str) -> tuple[str, bool]:
    """Join the process group `torchrun` describes (gloo on CPU, nccl on CUDA).

    Returns the device this rank uses and whether this call created the group (and must destroy it).
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 and not is_distributed():
        return device, False
    created = False
    if not is_distributed():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
        created = True
    if device == "cuda":
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
        torch.cuda.set_device(device)
    return device, created


def teardown(created: bool) -> None:
    if created and is_distributed():
        dist.destroy_process_group()


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """The element-wise sum over ranks (in place on `tensor`, which is also returned)."""
    if is_distributed():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def shard(indices: torch.Tensor) -> torch.Tensor:
    """This rank's share of an index order; every rank gets the same count, so all run the same steps."""
    world = world_size()
    usable = len(indices) - len(indices) % world
    return indices[:usable][rank()::world]


@torch.no_grad()
def broadcast_buffers(model: nn.Module) -> None:
    """Give every rank rank 0's BN statistics (each rank's last training step updated its own)."""
    if is_distributed():
        for buffer in model.buffers():
            dist.broadcast(buffer, src=0)
