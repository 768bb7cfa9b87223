"""Activity recording: the replayed neuron equals spikingjelly's, and the recorders accumulate per channel."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from spikingjelly.activation_based import functional

from scadeploy.models import build_model, encode_direct, make_neuron
from scadeploy.sca.activity import ActivityRecorder, GammaGradRecorder, channel_activity, neuron_attrs


@pytest.mark.parametrize("kind, v_reset", [("if", 0.0), ("lif", 0.0), ("if", None), ("lif", None)])
def test_replay_matches_spikingjelly_v_seq(kind, v_reset):
    torch.manual_seed(0)
    node = make_neuron(kind, v_reset=v_reset)  # store_v_seq=True: spikingjelly keeps v after reset
    x_seq = torch.randn(4, 3, 5, 6, 6) * 1.5
    spikes = node(x_seq)
    v_after = node.v_seq
    expected = (spikes + v_after.abs()).double().sum(dim=(0, 1, 3, 4))
    attrs = neuron_attrs(node)
    torch.testing.assert_close(channel_activity(attrs, x_seq, "spike_v"), expected)
    # v before reset: the charge equation applied to the previous step's v after reset
    v_prev = torch.cat([torch.full_like(v_after[:1], v_reset or 0.0), v_after[:-1]])
    if kind == "if":
        h = v_prev + x_seq
    else:
        h = v_prev + (x_seq - (v_prev - (v_reset or 0.0))) / 2.0
    torch.testing.assert_close(channel_activity(attrs, x_seq, "v_pre_reset"), h.abs().double().sum(dim=(0, 1, 3, 4)))


def test_recorder_running_mean_over_training_batches():
    torch.manual_seed(0)
    model = build_model("digits").train()
    recorder = ActivityRecorder(model)
    spikes = []
    model.features.sn2.register_forward_hook(lambda m, i, out: spikes.append(out.detach()))
    expected = torch.zeros(32, dtype=torch.float64)
    for images in [torch.rand(5, 1, 8, 8), torch.rand(3, 1, 8, 8)]:
        model(encode_direct(images, 4))
        expected += (spikes[-1] + model.features.sn2.v_seq.detach().abs()).double().sum((0, 1, 3, 4))
        functional.reset_net(model)
    scores = recorder.scores()
    assert set(scores) == {"features.conv1", "features.conv2", "features.conv3"}
    assert recorder.counts["features.conv2"] == 4 * 8 * 8 * 8  # T * images * H * W
    torch.testing.assert_close(scores["features.conv2"], expected / (4 * 8 * 8 * 8))
    assert float(expected.sum()) > 0
    model.eval()
    model(encode_direct(torch.rand(2, 1, 8, 8), 4))  # evaluation is not recorded
    assert recorder.counts["features.conv2"] == 4 * 8 * 8 * 8
    recorder.reset()
    assert recorder.counts["features.conv2"] == 0 and float(recorder.sums["features.conv2"].sum()) == 0.0
    recorder.remove()


def test_gamma_gradient_recorder_sums_absolute_gradients():
    torch.manual_seed(0)
    model = build_model("digits").train()
    recorder = GammaGradRecorder(model)
    total = torch.zeros(16, dtype=torch.float64)
    for _ in range(2):
        model.zero_grad()
        loss = F.cross_entropy(model(encode_direct(torch.rand(4, 1, 8, 8), 4)), torch.tensor([0, 1, 2, 3]))
        loss.backward()
        functional.reset_net(model)
        recorder.record()
        total += model.features.bn1.weight.grad.abs().double()
    torch.testing.assert_close(recorder.scores()["features.conv1"], total)
    assert float(total.sum()) > 0
