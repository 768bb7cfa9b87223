"""Compile your own spikingjelly model with your own channel masks, from Python.

    .venv/bin/python examples/compile_own_model.py [OUT_DIR]

Builds a small multi-step conv SNN, prunes half of its channels SCA-style (filter, BN gamma and
beta zeroed), strips them, checks the stripped network against the masked one, and writes the
manifest and an ONNX model.
"""

from __future__ import annotations

import sys
import tempfile
from collections import OrderedDict

import torch
from spikingjelly.activation_based import layer, neuron
from torch import nn

import scadeploy
from scadeploy.models import MeanOverTime

TIMESTEPS = 4


class MyNet(nn.Module):
    """Any multi-step spikingjelly network works; mark the time average with MeanOverTime."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(OrderedDict([
            ("conv1", layer.Conv2d(3, 32, 3, padding=1, bias=False, step_mode="m")),
            ("bn1", layer.BatchNorm2d(32, step_mode="m")),
            ("lif1", neuron.LIFNode(tau=2.0, step_mode="m")),
            ("pool1", layer.MaxPool2d(2, 2, step_mode="m")),
            ("conv2", layer.Conv2d(32, 64, 3, padding=1, bias=False, step_mode="m")),
            ("bn2", layer.BatchNorm2d(64, step_mode="m")),
            ("lif2", neuron.LIFNode(tau=2.0, step_mode="m")),
            ("pool2", layer.AdaptiveAvgPool2d(1, step_mode="m")),
            ("flatten", layer.Flatten(step_mode="m")),
        ]))
        self.mean = MeanOverTime()
        self.fc = nn.Linear(64, 10)

    def forward(self, x_seq: torch.Tensor) -> torch.Tensor:  # [T, N, C, H, W] -> [N, 10]
        return self.fc(self.mean(self.body(x_seq)))


@torch.no_grad()
def prune_half(model: MyNet) -> dict[str, torch.Tensor]:
    """Masks keyed by conv module name (True = kept); pruned channels zeroed in conv and BN."""
    masks = {}
    for conv, bn in ((model.body.conv1, model.body.bn1), (model.body.conv2, model.body.bn2)):
        keep = torch.arange(conv.out_channels) % 2 == 0
        conv.weight[~keep] = 0
        bn.weight[~keep] = 0
        bn.bias[~keep] = 0
        masks["body.conv1" if conv is model.body.conv1 else "body.conv2"] = keep
    return masks


def main() -> None:
    torch.manual_seed(0)
    model = MyNet().eval()
    masks = prune_half(model)
    images = torch.rand(8, 3, 32, 32)  # use real images of your task here

    result = scadeploy.compile(model, masks, images, TIMESTEPS)
    print(f"parameters {result.masked.num_params():,} -> {result.stripped.num_params():,}")
    print(f"stripped == masked on {result.parity.float64.samples} inputs: {result.parity.exact} "
          f"({result.parity.float64.spike_summary()} in float64)")
    for kept in result.report.kept:
        print(f"kept {kept.layer}[{kept.channel}]: {kept.reason}")

    out_dir = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="my-net-")
    manifest = scadeploy.write_artifacts(result, out_dir, targets=["onnx-cpu"], force=True)
    print(f"wrote {out_dir}: {list(manifest.targets['onnx-cpu'].files)}")


if __name__ == "__main__":
    main()
