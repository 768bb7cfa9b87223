"""fold_batchnorm removes every BN after a conv/linear and keeps spikes identical (float64)."""

from __future__ import annotations

import pytest
import torch
from support import INPUT_SHAPES, masked_model
from tolerances import EXACT_F64_ATOL

from scadeploy.backends.torch_ref import run_graph
from scadeploy.frontends.trace import trace_model
from scadeploy.ir.graph import Op
from scadeploy.ir.passes.fold_batchnorm import fold_batchnorm


@pytest.mark.parametrize("name", ["digits", "resnet18"])
def test_fold_batchnorm_keeps_outputs(name: str) -> None:
    kwargs = {"input_size": 8, "stage_widths": (8, 8, 8, 8)} if name == "resnet18" else {}
    model, _ = masked_model(name, 0.5, **kwargs)
    shape = (INPUT_SHAPES[name][0], 8, 8)
    graph = trace_model(model, shape, 4)
    folded = fold_batchnorm(graph)
    assert folded.of_op(Op.BATCHNORM) == []
    assert all("bias" in n.params for n in folded.of_op(Op.CONV2D))
    x = torch.rand(4, *shape) * 2
    a = run_graph(graph, x, record=True, dtype=torch.float64)
    b = run_graph(folded, x, record=True, dtype=torch.float64)
    assert all(torch.equal(a.spikes[k], b.spikes[k]) for k in a.spikes)
    assert torch.allclose(a.logits, b.logits, atol=EXACT_F64_ATOL)
