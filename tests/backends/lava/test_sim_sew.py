"""Lava itself on SEW ResNets: its CPU simulator reproduces the emulator spike for spike (AND/IAND neurons,
distributed ADD sums and the multi-path readout included). Each test starts many Lava processes."""

from __future__ import annotations

import pytest
import torch
from sew_support import CONNECTIONS, frames, narrow_sew_resnet, sew_resnet18

from scadeploy.backends.lava.emulator import emulate
from scadeploy.backends.lava.export import lower_graph
from scadeploy.backends.lava.runner import run_lava
from scadeploy.compiler import compile_model
from scadeploy.ir.graph import Op
from scadeploy.targets.backend_options import LavaOptions

pytestmark = [pytest.mark.lava, pytest.mark.slow]

SHAPE = (3, 16, 16)


def _lava_vs_emulator(model, timesteps: int, samples: int = 2) -> tuple[int, int, dict, object]:
    """(spikes differing, spikes compared, spikes fired per layer) of Lava against the emulator."""
    x = frames(SHAPE, samples)
    graph = compile_model(model, None, x, timesteps=timesteps).deployable
    net, _, _ = lower_graph(graph, LavaOptions(), float(x.max()))
    lava_run = run_lava(net, x, builder="graph", chunk_samples=samples)
    emu = emulate(net, x)
    assert set(lava_run.spikes) == set(emu.spikes)
    assert torch.equal(lava_run.logits, emu.logits)
    differ = sum(int((lava_run.spikes[n] != s).sum()) for n, s in emu.spikes.items())
    compared = sum(s.numel() for s in emu.spikes.values())
    return differ, compared, {n: int(s.sum()) for n, s in emu.spikes.items()}, graph


@pytest.mark.parametrize("cnf", CONNECTIONS)
def test_narrow_sew_resnet_on_lava_matches_the_emulator(cnf: str) -> None:
    differ, compared, fired, graph = _lava_vs_emulator(narrow_sew_resnet(cnf), timesteps=4)
    assert differ == 0 and compared > 0
    assert all(fired[p.name] > 0 for p in graph.of_op(Op.MUL))  # the AND/IAND neurons fire on Lava


def test_sew_resnet18_add_on_lava_matches_the_emulator() -> None:
    """spikingjelly's sew_resnet18(cnf='ADD', IF) at 3x16x16, T = 2, two samples."""
    differ, compared, fired, _ = _lava_vs_emulator(sew_resnet18("ADD"), timesteps=2)
    assert differ == 0 and compared > 60_000 and sum(fired.values()) > 0
