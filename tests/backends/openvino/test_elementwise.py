"""OpenVINO reads the ONNX lowering of mul, complement and scale: the SEW ResNets spike as the reference does."""

from __future__ import annotations

import pytest
from sew_support import CONNECTIONS, frames, narrow_sew_resnet
from tolerances import ONNX_LOGIT_ATOL

from scadeploy.backends.onnx.ops import ONNX_OPS
from scadeploy.compiler import compile_model
from scadeploy.ir.graph import Op
from scadeploy.targets import load_target

pytest.importorskip("openvino")

from scadeploy.backends.openvino import export as openvino_backend  # noqa: E402


def test_openvino_lowers_every_element_wise_op_as_onnx_does() -> None:
    for op in (Op.MUL, Op.COMPLEMENT, Op.SCALE):
        assert openvino_backend.OPENVINO_OPS.table[op] == ONNX_OPS.table[op]


@pytest.mark.parametrize("cnf", CONNECTIONS)
def test_sew_resnet_on_openvino_has_exact_spikes(tmp_path, cnf: str) -> None:
    x = frames((3, 16, 16), 8)
    graph = compile_model(narrow_sew_resnet(cnf), None, x, timesteps=4).deployable
    parity = openvino_backend.export(graph, load_target("openvino-cpu"), tmp_path, x)["parity"]
    assert parity["spike_mismatches"] == 0 and parity["spikes_compared"] > 0 and parity["passed"]
    assert parity["max_logit_diff"] <= ONNX_LOGIT_ATOL and parity["arithmetic"] == "f32"
