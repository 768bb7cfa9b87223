"""On real digits, the fixed-point network classifies as well as the float one (whole test split, emulator)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from spikingjelly.activation_based import functional

from scadeploy.backends.lava.emulator import emulate
from scadeploy.backends.lava.export import lower_graph
from scadeploy.backends.torch_ref import run_graph
from scadeploy.data.datasets import load_dataset
from scadeploy.frontends.trace import trace_model
from scadeploy.ir.passes.fold_batchnorm import fold_batchnorm
from scadeploy.models import build_model, encode_direct
from scadeploy.targets.backend_options import LavaOptions

TIMESTEPS = 4


def train_digits(neuron: str, epochs: int = 4, seed: int = 0) -> torch.nn.Module:
    """A plain surrogate-gradient training loop (Adam), enough for ~97% on the 8x8 digits."""
    torch.manual_seed(seed)
    images, labels = load_dataset("digits", train=True).tensors
    model = build_model("digits", neuron=neuron)
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
    for _ in range(epochs):
        model.train()
        for batch in torch.randperm(len(images)).split(64):
            loss = F.cross_entropy(model(encode_direct(images[batch], TIMESTEPS)), labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            functional.reset_net(model)
    return model.eval()


def _accuracies(neuron: str) -> tuple[float, float, float]:
    graph = fold_batchnorm(trace_model(train_digits(neuron), (1, 8, 8), TIMESTEPS))
    images, labels = load_dataset("digits", train=False).tensors
    net, _, _ = lower_graph(graph, LavaOptions(), float(images.abs().max()))
    fixed = emulate(net, images, record=False).logits.argmax(1)
    ref = run_graph(graph, images).logits.argmax(1)
    return (float((fixed == labels).double().mean()), float((ref == labels).double().mean()),
            float((fixed == ref).double().mean()))


def test_if_fixed_point_accuracy_is_within_one_point_of_float():
    fixed, ref, agreement = _accuracies("if")
    assert ref > 0.9
    assert abs(fixed - ref) <= 0.01
    assert agreement > 0.97


def test_lif_fixed_point_accuracy_is_within_one_point_of_float():
    fixed, ref, agreement = _accuracies("lif")
    assert ref > 0.85
    assert abs(fixed - ref) <= 0.01
    assert agreement > 0.95
