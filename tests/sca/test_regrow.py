"""Re-initialising regrown channels: a fresh filter within the init bound, BN reset, momentum cleared."""

from __future__ import annotations

import math

import torch

from scadeploy.frontends.masks import apply_masks
from scadeploy.models import build_model
from scadeploy.sca.regrow import reinit_channels


def test_only_the_regrown_rows_restart():
    torch.manual_seed(0)
    model = build_model("digits", widths=[4, 8, 8])
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.rand(2, 3, 1, 8, 8)).sum().backward()
    optimizer.step()  # momentum buffers exist
    masks = {"features.conv1": torch.tensor([True, False, True, False])}
    apply_masks(model, masks)
    conv, bn = model.features.conv1, model.features.bn1
    before = conv.weight.detach().clone()
    regrown = {"features.conv1": torch.tensor([False, True, False, False])}
    assert reinit_channels(model, optimizer, regrown, torch.Generator().manual_seed(1)) == 1
    row = conv.weight[1]
    assert row.abs().max() <= 1 / math.sqrt(conv.weight[0].numel()) and row.abs().sum() > 0
    assert bn.weight[1] == 1 and bn.bias[1] == 0 and bn.running_mean[1] == 0 and bn.running_var[1] == 1
    assert not optimizer.state[conv.weight]["momentum_buffer"][1].any()
    assert optimizer.state[conv.weight]["momentum_buffer"][0].any()  # kept rows keep their momentum
    assert torch.equal(conv.weight[[0, 2, 3]], before[[0, 2, 3]])  # the others, pruned row 3 included, untouched
