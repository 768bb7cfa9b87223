"""OpenVINO backend: the openvino-cpu target's files, parity under OpenVINO, its options, and running without it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from support import INPUT_SHAPES, compiled_digits, invoke, masked_model, write_checkpoint
from tolerances import ONNX_LOGIT_ATOL

from scadeploy.backends.torch_ref import run_graph
from scadeploy.compiler import compile_model
from scadeploy.errors import TargetError
from scadeploy.targets import load_target

pytest.importorskip("openvino")

from scadeploy.backends.openvino import export as openvino_backend  # noqa: E402
from scadeploy.backends.openvino.runtime import OpenVinoRunner  # noqa: E402


@pytest.mark.parametrize("neuron_kind", ["if", "lif"])
def test_openvino_target_matches_the_reference(tmp_path, neuron_kind) -> None:
    model, masks = masked_model("digits", 0.3, neuron_kind)
    x = torch.rand(32, *INPUT_SHAPES["digits"], generator=torch.Generator().manual_seed(1))
    graph = compile_model(model, masks, x, timesteps=4).deployable
    section = openvino_backend.export(graph, load_target("openvino-cpu"), tmp_path, x)
    assert section["files"] == ["model.xml", "model.bin", "openvino.config.json"]
    parity = section["parity"]
    assert parity["max_logit_diff"] <= ONNX_LOGIT_ATOL and parity["class_agreement"] == 1.0
    assert parity["spike_mismatches"] == 0 and parity["spikes_compared"] > 0 and parity["passed"]
    assert parity["arithmetic"] == "f32" and section["config"]["INFERENCE_PRECISION_HINT"] == "f32"
    config = json.loads((tmp_path / "openvino.config.json").read_text())
    assert config == {"device": "CPU", "config": section["config"]}
    runner = OpenVinoRunner(tmp_path / "model.xml", threads=1)  # the saved IR, read back on its own
    runner.prepare(5)
    torch.testing.assert_close(torch.from_numpy(runner.run(x[:5].numpy())), run_graph(graph, x[:5]).logits,
                               atol=ONNX_LOGIT_ATOL, rtol=0)


def test_bad_openvino_options_are_refused(tmp_path) -> None:
    path = tmp_path / "ov.toml"
    path.write_text('backend = "openvino"\n[openvino]\nprecision = "f16"\n')
    with pytest.raises(TargetError, match="precision must be one of f32, bf16, got 'f16'") as info:
        load_target(str(path))
    assert "flips spikes" in info.value.hint
    path.write_text('backend = "openvino"\n[openvino]\nperformance_hint = "FAST"\n')
    with pytest.raises(TargetError, match="performance_hint must be one of LATENCY, THROUGHPUT, got 'FAST'"):
        load_target(str(path))


def test_compile_and_benchmark_without_openvino_fail_in_one_line(tmp_path) -> None:
    """With `openvino` unimportable, asking for it is one error line and exit 2; ONNX keeps working."""
    _, out = compiled_digits(tmp_path)
    script = ("import sys; sys.modules['openvino'] = None\n"
              "from scadeploy.cli import main\n"
              "main(sys.argv[1:])")
    for args in (["benchmark", str(out), "-r", "openvino", "-b", "1", "--repeats", "1"],
                 ["compile", str(tmp_path / "d.pt"), "-o", str(tmp_path / "ov"), "--target", "openvino-cpu"]):
        result = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=300)
        assert result.returncode == 2, result.stderr
        assert "error: OpenVINO is not installed" in result.stderr and "scadeploy[openvino]" in result.stderr
        assert "Traceback" not in result.stderr
    ok = subprocess.run([sys.executable, "-c", script, "benchmark", str(out), "-r", "auto", "-b", "1", "--warmup",
                         "0", "--repeats", "1", "--threads", "1", "-r", "onnx:masked", "--json"],
                        capture_output=True, text=True, timeout=600)
    assert ok.returncode == 0, ok.stderr
    runtimes = json.loads(ok.stdout)["recommended_runtime"]["by_batch_size"]["1"]["candidates_p50_ms"]
    assert set(runtimes) == {"onnx", "onnx-blocked", "torch-compile"}  # auto leaves out what is not installed


def test_compile_command_reports_openvino_parity(tmp_path) -> None:
    source = write_checkpoint(tmp_path / "d.pt")
    result = invoke("compile", str(source), "-o", str(tmp_path / "out"), "-t", "openvino-cpu", "-t", "onnx-cpu")
    assert result.exit_code == 0, result.stderr
    assert "target openvino-cpu: model.xml, model.bin, openvino.config.json; OpenVINO (f32) vs torch reference" in \
        result.stdout and "(ok)" in result.stdout
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["targets"]["openvino-cpu"]["parity"]["passed"]
