"""Acceptance: every spikingjelly 2.0 zoo family through `scadeploy compile` to onnx-cpu, loihi2-sim and nir.

Each case (tests/zoo/families.py) is compiled once from the user's files (weights.pt, a factory file,
inputs.npz) and judged: the compile (exit 0, no traceback, trace and stripping parity), every target
against the case's expectation (compiled with parity passed, or refused with a one-line reason),
then inspect, benchmark and simulate on the directory. A case whose feature has not landed yet is
xfail(strict=True) with that feature as the reason, so it turns into a failure the moment it passes.
The full-size inputs are marked slow; `-m "not slow"` runs the small ones. Under xdist, pass
`--dist loadgroup` so that each case compiles once (its tests share one xdist group).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from zoo.families import (
    CASES,
    MUST,
    TARGETS,
    Case,
    CaseRun,
    activity_problems,
    compile_case,
    compile_problems,
    model_refused,
    run_tools,
    target_problems,
    tool_problems,
)

_RUNS: dict[str, CaseRun] = {}


def _params(cases: list[Case], scope: str, with_targets: bool = False) -> list:
    """pytest params for `cases` (times the targets), slow and xfail marks attached."""
    params = []
    for case in cases:
        for target in TARGETS if with_targets else (None,):
            full_size = [pytest.mark.slow, pytest.mark.zoo_full] if case.slow else []
            marks = [pytest.mark.xdist_group(case.name), *full_size]
            reason = case.pending_reason(target or scope)
            if reason:
                marks.append(pytest.mark.xfail(strict=True, reason=reason))
            values = (case, target) if with_targets else (case,)
            params.append(pytest.param(*values, marks=marks, id=f"{case.name}-{target}" if target else case.name))
    return params


@pytest.fixture(scope="session")
def zoo_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("zoo")


def compiled(case: Case, root: Path) -> CaseRun:
    """The case compiled once per session (every test of the case reads the same run)."""
    if case.name not in _RUNS:
        _RUNS[case.name] = compile_case(case, root / case.name)
    return _RUNS[case.name]


@pytest.mark.parametrize("case", _params(list(CASES), "compile"))
def test_compile(case: Case, zoo_root: Path) -> None:
    problems = compile_problems(compiled(case, zoo_root))
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("case", _params([c for c in CASES if c.calibrate], "compile"))
def test_every_neuron_layer_spikes_on_the_inputs(case: Case, zoo_root: Path) -> None:
    """The harness's own check: parity through layers that never spike would prove nothing."""
    problems = activity_problems(compiled(case, zoo_root))
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(("case", "target"), _params([c for c in CASES if c.model_refusal != MUST], "",
                                                     with_targets=True))
def test_target(case: Case, target: str, zoo_root: Path) -> None:
    problems = target_problems(compiled(case, zoo_root), target)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("case", _params([c for c in CASES if c.model_refusal != MUST], "tools"))
def test_inspect_benchmark_simulate(case: Case, zoo_root: Path) -> None:
    run = compiled(case, zoo_root)
    if run.manifest is None and model_refused(run) and case.model_refusal is not None:
        pytest.skip("the whole model was refused, which this case allows")
    assert run.manifest is not None, f"compile exited {run.compile.exit_code}: {run.compile.last_line()}"
    if not run.tools:
        run_tools(run)
    problems = tool_problems(run)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("name", ["spiking_vgg11", "spiking_vgg11_bn"])
def test_vgg_at_224_traces_with_imagenet_shapes(name: str) -> None:
    """At 224x224 the features end at 7x7, so the adaptive pooling is the identity: trace and shapes only."""
    from spikingjelly.activation_based import functional, neuron
    from spikingjelly.activation_based.model import spiking_vgg

    from scadeploy.frontends.trace import trace_model

    model = getattr(spiking_vgg, name)(spiking_neuron=neuron.IFNode, num_classes=10)
    functional.set_step_mode(model, "m")
    graph = trace_model(model, (3, 224, 224), 4)
    shapes = {node.name: node.shape for node in graph.nodes}
    assert shapes["input"] == (3, 224, 224)
    assert shapes["avgpool"] == (512, 7, 7) and shapes["flatten"] == (512 * 7 * 7,)
    assert shapes["classifier.0"] == (4096,) and shapes["output"] == (10,)
    assert sum(node.op.name == "NEURON" for node in graph.nodes) == 8 + 2
