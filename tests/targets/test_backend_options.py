"""Each backend's option declarations: defaults that agree with the conventions they stand for."""

from __future__ import annotations

from scadeploy.ir.nir_conventions import DEFAULT_DT
from scadeploy.targets.backend_options import OPSETS, NirOptions, OnnxOptions, OpenVinoOptions
from scadeploy.targets.options import declared


def test_the_nir_time_step_defaults_to_the_nir_convention() -> None:
    assert NirOptions().dt == DEFAULT_DT


def test_onnx_and_openvino_share_one_opset_range() -> None:
    for options in (OnnxOptions, OpenVinoOptions):
        kind = declared(options)["opset"].kind
        assert (kind.low, kind.high) == OPSETS and options().opset == OPSETS[0]
