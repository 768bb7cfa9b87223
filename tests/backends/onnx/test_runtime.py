"""The runtime settings every target option names exist, and only those."""

from __future__ import annotations

from scadeploy.backends.onnx.runtime import OPT_LEVELS, PROVIDERS
from scadeploy.targets.backend_options import OnnxOptions
from scadeploy.targets.options import choices_of


def test_every_declared_choice_maps_to_an_onnx_runtime_setting() -> None:
    assert tuple(PROVIDERS) == choices_of(OnnxOptions, "provider")
    assert tuple(OPT_LEVELS) == choices_of(OnnxOptions, "graph_optimization_level")
