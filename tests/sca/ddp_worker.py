"""Run by the DDP test under `torchrun --nproc_per_node 2`: train on digits, each rank writes its masks."""

from __future__ import annotations

import os
import sys

import torch

from scadeploy.sca import TrainConfig, train

torch.set_num_threads(1)
config = TrainConfig(keep_ratio=0.3, epochs=2, batch_size=64, model_kwargs={"widths": [8, 16, 16]})
result = train(config)
torch.save({"masks": result.masks, "history": [h.to_dict() for h in result.history],
            "conv1": result.checkpoint.state_dict["features.conv1.weight"]},
           os.path.join(sys.argv[1], f"rank{os.environ['RANK']}.pt"))
