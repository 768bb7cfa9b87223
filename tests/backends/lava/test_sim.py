"""Lava itself is the ground truth: the emulator must reproduce every spike of every layer at every step.

Each test starts Lava's CPU simulator (one OS process per Lava process), so they are few and small.
"""

from __future__ import annotations

import pytest
import torch
from lava_support import CASES, frames, lowered

from scadeploy.backends.lava.emulator import emulate
from scadeploy.backends.lava.netx import write_net
from scadeploy.backends.lava.runner import run_lava
from scadeploy.data.datasets import load_dataset

pytestmark = [pytest.mark.lava, pytest.mark.slow]


def _assert_bit_exact(lava_result, emu_result) -> None:
    assert set(lava_result.spikes) == set(emu_result.spikes)
    fired = 0
    for name, spikes in emu_result.spikes.items():
        assert torch.equal(lava_result.spikes[name], spikes), f"layer {name}: spikes differ"
        fired += int(spikes.sum())
    assert fired > 0
    assert torch.equal(lava_result.logits, emu_result.logits)


def test_digits_netx_matches_the_emulator_on_20_test_images(tmp_path):
    net, _, _ = lowered("digits")
    path = write_net(net, tmp_path / "model.net")
    images = load_dataset("digits", train=False).tensors[0][:20]
    result = run_lava(net, images, net_path=path, builder="netx", chunk_samples=20)
    _assert_bit_exact(result, emulate(net, images))
    assert result.steps == 20 * net.timesteps + net.latency


def test_vgg_with_max_pooling_netx_matches_the_emulator_on_20_samples(tmp_path):
    net, _, _ = lowered("vgg")
    path = write_net(net, tmp_path / "model.net")
    x = frames(CASES["vgg"][2], 20, seed=1)
    _assert_bit_exact(run_lava(net, x, net_path=path, builder="netx", chunk_samples=20), emulate(net, x))


def test_resnet18_with_a_03_keep_mask_runs_on_lava_and_matches_the_emulator():
    """Full ResNet-18 widths (64..512, only block-internal channels pruned), 8x8 input, T = 2."""
    net, _, _ = lowered("resnet", keep=0.3, timesteps=2, stage_widths=(64, 128, 256, 512))
    assert not net.is_chain and any(e.delay for layer in net.layers for e in layer.edges)
    x = frames(CASES["resnet"][2], 2, seed=2)
    _assert_bit_exact(run_lava(net, x, builder="graph", chunk_samples=2), emulate(net, x))
