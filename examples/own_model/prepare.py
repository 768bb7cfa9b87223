"""Make the files a user brings: trained-then-pruned weights (a plain state_dict) and event data.

    .venv/bin/python examples/own_model/prepare.py OUT_DIR

Trains `my_snn.DvsNet` for a few epochs on digits turned into ON/OFF events, zeroes 60% of the
channels of each conv SCA-style (filter, BN gamma and beta), fine-tunes, and writes
OUT_DIR/weights.pt and OUT_DIR/events.npz (x [T, N, 2, 8, 8] spikes, y labels).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from my_snn import build
from spikingjelly.activation_based import functional
from torch import nn

from scadeploy.data import load_dataset
from scadeploy.data.events import frames_to_events

TIMESTEPS = 4


def train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int, keep: dict | None = None) -> None:
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    model.train()
    for _ in range(epochs):
        for index in torch.randperm(y.shape[0]).split(64):
            functional.reset_net(model)
            loss = nn.functional.cross_entropy(model(x[:, index]).mean(0), y[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if keep:
                prune(model, keep)
    model.eval()


@torch.no_grad()
def prune(model: nn.Module, keep: dict[int, torch.Tensor]) -> None:
    """Zero the pruned channels' filters and BN gamma/beta (what SCA leaves behind)."""
    for i, mask in keep.items():
        conv, bn = model.features[i], model.features[i + 1]
        conv.weight[~mask] = 0
        bn.weight[~mask] = 0
        bn.bias[~mask] = 0


def main(out: Path) -> None:
    torch.manual_seed(0)
    out.mkdir(parents=True, exist_ok=True)
    train_set, test_set = (load_dataset("digits", train=t).tensors for t in (True, False))
    x_train, x_test = (frames_to_events(images, TIMESTEPS) for images in (train_set[0], test_set[0]))
    model = build()
    train(model, x_train, train_set[1], epochs=8)
    keep = {i: torch.rand(model.features[i].out_channels) < 0.4 for i in (0, 4)}
    prune(model, keep)
    train(model, x_train, train_set[1], epochs=4, keep=keep)
    functional.reset_net(model)
    with torch.no_grad():
        accuracy = (model(x_test).mean(0).argmax(1) == test_set[1]).float().mean()
    torch.save(model.state_dict(), out / "weights.pt")
    np.savez(out / "events.npz", x=x_test.numpy().astype(np.uint8), y=test_set[1].numpy())
    print(f"test accuracy {accuracy:.2%}; wrote {out / 'weights.pt'} and {out / 'events.npz'}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "my-snn"))
