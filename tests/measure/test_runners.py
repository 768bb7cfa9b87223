"""Every runner computes the reference logits; device selection fails clearly where it cannot work."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch
from support import INPUT_SHAPES, masked_model
from tolerances import ONNX_LOGIT_ATOL

from scadeploy.backends.onnx.align import align_channels
from scadeploy.backends.onnx.export import OnnxOptions, build_models
from scadeploy.backends.onnx.runtime import OrtRunner, OrtStepRunner, ort_session
from scadeploy.backends.onnx.step import state_specs
from scadeploy.backends.openvino.runtime import OpenVinoRunner, openvino_available
from scadeploy.backends.torch_ref import run_graph
from scadeploy.errors import UnsupportedError
from scadeploy.frontends.trace import trace_model
from scadeploy.ir.passes.fold_batchnorm import fold_batchnorm
from scadeploy.measure.runners import DynamoOnnxRunner, SpikingJellyRunner, TorchCompileRunner, TorchRefRunner

HAS_ORT_CUDA = "CUDAExecutionProvider" in ort.get_available_providers()


@pytest.fixture(scope="module")
def digits():
    model, _ = masked_model("digits", 0.5)
    graph = fold_batchnorm(trace_model(model, INPUT_SHAPES["digits"], timesteps=4))
    x = torch.rand(6, *INPUT_SHAPES["digits"], generator=torch.Generator().manual_seed(2))
    return model, graph, x.numpy(), run_graph(graph, x).logits.numpy()


def _check(runner, x: np.ndarray, expected: np.ndarray, atol: float = ONNX_LOGIT_ATOL) -> None:
    runner.prepare(x.shape[0])
    for _ in range(2):  # a second call must start from a fresh state again
        np.testing.assert_allclose(runner.run(x), expected, atol=atol)


def test_onnx_runners_match_the_reference(digits) -> None:
    _, graph, x, expected = digits
    options = OnnxOptions(align_channels=8, intra_op_num_threads=1)
    sequence, step = build_models(graph, options)
    _check(OrtRunner(sequence.SerializeToString(), threads=1), x, expected)
    states = state_specs(align_channels(graph, 8))
    stepper = OrtStepRunner(step.SerializeToString(), states, graph.timesteps, threads=1)
    _check(stepper, x, expected)
    _check(stepper, x[:2], expected[:2])  # a new batch size re-creates the state
    _check(OrtRunner(sequence.SerializeToString(), threads=2, spinning=False), x, expected)


def test_step_runner_steps_exactly_like_the_sequence_model(digits) -> None:
    _, graph, x, _ = digits
    sequence, step = build_models(graph, OnnxOptions(align_channels=8))
    whole = OrtRunner(sequence.SerializeToString(), threads=1)
    whole.prepare(x.shape[0])
    stepper = OrtStepRunner(step.SerializeToString(), state_specs(graph), graph.timesteps, threads=1)
    stepper.prepare(x.shape[0])  # unaligned states: their shapes come from the (aligned) file
    expected = whole.run(x)
    np.testing.assert_array_equal(stepper.run(x), expected)  # bit for bit
    assert len(stepper.step_seconds) == graph.timesteps and min(stepper.step_seconds) > 0
    stepper.reset(x.shape[0])
    partial = [stepper.step(x if t == 0 else None) for t in range(graph.timesteps)]
    np.testing.assert_array_equal(partial[-1], expected)
    assert not np.array_equal(partial[-2], expected)  # the logits build up step by step: state is carried


def test_spinning_is_a_session_option(digits) -> None:
    _, graph, _, _ = digits
    sequence, _ = build_models(graph, OnnxOptions())
    for spinning, flag in ((True, "1"), (False, "0")):
        session = ort_session(sequence.SerializeToString(), threads=2, spinning=spinning)
        assert session.get_session_options().get_session_config_entry("session.intra_op.allow_spinning") == flag


def test_torch_runners_match_the_reference(digits) -> None:
    model, graph, x, expected = digits
    _check(TorchRefRunner(graph), x, expected, atol=0)
    _check(SpikingJellyRunner(model, graph.timesteps), x, expected, atol=1e-5)


@pytest.mark.slow
def test_dynamo_export_runner_matches_the_reference(digits) -> None:
    model, graph, x, expected = digits
    _check(DynamoOnnxRunner(model, graph.input.shape, graph.timesteps, threads=1), x, expected)


@pytest.mark.skipif(HAS_ORT_CUDA, reason="this machine has the ONNX Runtime CUDA provider")
def test_cuda_provider_is_refused_without_onnxruntime_gpu(digits) -> None:
    with pytest.raises(UnsupportedError, match="CUDAExecutionProvider") as info:
        ort_session(b"", provider="cuda")
    assert "onnxruntime-gpu" in info.value.hint


@pytest.mark.skipif(not HAS_ORT_CUDA, reason="needs onnxruntime-gpu and an NVIDIA GPU")
def test_cuda_step_runner_with_io_binding(digits) -> None:
    _, graph, x, expected = digits
    sequence, step = build_models(graph, OnnxOptions(provider="cuda"))
    _check(OrtRunner(sequence.SerializeToString(), provider="cuda"), x, expected, atol=1e-3)
    stepper = OrtStepRunner(step.SerializeToString(), state_specs(graph), graph.timesteps, provider="cuda")
    _check(stepper, x, expected, atol=1e-3)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_torch_cuda_device_is_refused_without_a_gpu(digits) -> None:
    with pytest.raises(UnsupportedError, match="no CUDA GPU"):
        TorchRefRunner(digits[1], device="cuda")


@pytest.mark.skipif(not openvino_available(), reason="needs OpenVINO (pip install 'scadeploy[openvino]')")
def test_openvino_runners_match_the_reference(digits) -> None:
    _, graph, x, expected = digits
    sequence, _ = build_models(graph, OnnxOptions(align_channels=8))
    exact = OpenVinoRunner(sequence.SerializeToString(), threads=1)
    _check(exact, x, expected)
    assert exact.precision == "f32"  # pinned: never OpenVINO's bf16 default
    fast = OpenVinoRunner(sequence.SerializeToString(), threads=1, precision="bf16")
    fast.prepare(x.shape[0])
    assert fast.precision in ("f32", "bf16")  # bf16 only where the CPU has bf16 units
    if fast.precision == "f32":
        np.testing.assert_allclose(fast.run(x), expected, atol=ONNX_LOGIT_ATOL)
    with pytest.raises(UnsupportedError, match="unknown OpenVINO precision 'f16'"):
        OpenVinoRunner(sequence.SerializeToString(), precision="f16")


@pytest.mark.slow
def test_torch_compile_runner_matches_the_reference(digits) -> None:
    _, graph, x, expected = digits
    runner = TorchCompileRunner(graph)
    _check(runner, x, expected)
    assert set(runner.compile_seconds) == {x.shape[0]} and runner.compile_seconds[x.shape[0]] > 0
