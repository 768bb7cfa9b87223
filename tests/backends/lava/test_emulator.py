"""The fixed-point emulator: Lava's integer rules, and exactness against the integer IR for IF networks.

Bit-exactness against Lava itself is tested in test_sim.py (it needs the simulator).
"""

from __future__ import annotations

import pytest
import torch
from lava_support import CASES, frames, lowered

from scadeploy.backends.lava import evaluate
from scadeploy.backends.lava.emulator import emulate, exact_gpu_arithmetic, signed_clamp24, trunc_decay, wrap_current
from scadeploy.backends.lava.evaluate import compare_devices
from scadeploy.backends.torch_ref import run_graph


def test_decay_truncates_toward_zero_like_lava():
    x = torch.tensor([-4097, -1, 0, 1, 4097, 12345], dtype=torch.int64)
    expected = [int(v * 2048 / 4096) for v in x.tolist()]  # int() truncates toward zero
    assert trunc_decay(x, 2048).tolist() == expected
    assert trunc_decay(x, 0).tolist() == x.tolist() and trunc_decay(x, 4096).tolist() == [0] * 6


def test_state_wraps_and_clamps_at_24_bits():
    big = 2**23
    assert wrap_current(torch.tensor([big + 5, -big - 5, big, -big])).tolist() == [-big + 5, big - 5, big, big]
    assert signed_clamp24(torch.tensor([big, -big - 1, 5])).tolist() == [-big, big - 1, 5]


@pytest.mark.parametrize("case", ["digits", "vgg", "resnet"])
def test_if_networks_match_the_integer_graph_exactly(case):
    net, qgraph, _ = lowered(case)
    x = frames(CASES[case][2], 24)
    emu = emulate(net, x, batch_size=10)  # several batches
    ref = run_graph(qgraph, emu.x_int.double(), record=True, dtype=torch.float64)
    assert set(emu.spikes) == set(ref.spikes)
    total = 0
    for name, spikes in emu.spikes.items():
        assert torch.equal(spikes.double(), ref.spikes[name]), name
        total += int(spikes.sum())
    assert total > 100
    logits = ref.logits / net.readout_scale if net.has_readout else ref.logits
    assert torch.allclose(emu.logits, logits, atol=1e-9)


def test_lif_network_stays_close_to_the_integer_graph():
    net, qgraph, _ = lowered("digits", neuron="lif")
    emu = emulate(net, frames((1, 8, 8), 32))
    ref = run_graph(qgraph, emu.x_int.double(), record=True, dtype=torch.float64)
    same = sum(int((s.double() == ref.spikes[n]).sum()) for n, s in emu.spikes.items())
    assert same / sum(s.numel() for s in emu.spikes.values()) > 0.99


def test_recording_can_be_switched_off_without_changing_logits():
    net, _, _ = lowered("vgg")
    x = frames(CASES["vgg"][2], 8)
    assert torch.equal(emulate(net, x, record=False).logits, emulate(net, x).logits)
    assert emulate(net, x, record=False).spikes == {}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_emulation_is_identical_to_cpu():
    net, _, _ = lowered("resnet")
    x = frames(CASES["resnet"][2], 16)
    cpu, cuda = emulate(net, x), emulate(net, x, device="cuda")
    assert torch.equal(cpu.logits, cuda.logits)
    assert all(torch.equal(cpu.spikes[n], cuda.spikes[n]) for n in cpu.spikes)


def test_device_comparison_counts_every_difference(monkeypatch):
    net, _, _ = lowered("vgg")
    x = frames(CASES["vgg"][2], 6)
    same = compare_devices(net, x, "cpu", "cpu", batch_size=4)
    assert same.identical and same.agreement.samples == 6 and same.agreement.spikes_compared > 0
    assert set(same.to_dict()["seconds"]) == {"device", "reference_device"}
    real = evaluate.emulate
    calls = []

    def off_by_one_spike(*args, **kwargs):
        result = real(*args, **kwargs)
        calls.append(1)
        if len(calls) == 2:  # the run on `device`: one spike and one logit changed
            first = next(iter(result.spikes))
            result.spikes[first].view(-1)[0] ^= 1
            result.logits[0, 0] += 0.5
        return result

    monkeypatch.setattr(evaluate, "emulate", off_by_one_spike)
    differs = compare_devices(net, x, "cpu", "cpu")
    assert differs.agreement.spike_mismatches == 1 and differs.agreement.max_logit_diff == 0.5
    assert not differs.identical


def test_exact_gpu_arithmetic_turns_tf32_off_and_restores_it():
    cudnn = torch.backends.cudnn
    before = (torch.backends.cuda.matmul.allow_tf32, cudnn.allow_tf32, cudnn.deterministic, cudnn.benchmark)
    with exact_gpu_arithmetic():
        assert not torch.backends.cuda.matmul.allow_tf32 and not cudnn.allow_tf32 and cudnn.deterministic
    assert (torch.backends.cuda.matmul.allow_tf32, cudnn.allow_tf32, cudnn.deterministic, cudnn.benchmark) == before
