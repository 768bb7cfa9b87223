"""Scale-out: two torchrun processes on gloo compute identical masks from all-reduced signals."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch

WORKER = Path(__file__).with_name("ddp_worker.py")


def test_two_ranks_compute_identical_masks(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(WORKER), str(tmp_path)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    rank0, rank1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert rank0["masks"].keys() == rank1["masks"].keys()
    for name, mask in rank0["masks"].items():
        assert torch.equal(mask, rank1["masks"][name]), name
        assert 0 < int(mask.sum()) < mask.numel()
    for h0, h1 in zip(rank0["history"], rank1["history"], strict=True):  # losses and accuracies are all-reduced too
        assert {**h0, "seconds": 0} == {**h1, "seconds": 0}
    assert torch.equal(rank0["conv1"], rank1["conv1"])  # DDP keeps the weights in step
    assert rank0["history"][-1]["kept_total"] >= 12
