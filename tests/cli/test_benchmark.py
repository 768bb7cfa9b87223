"""`scadeploy benchmark DIR` end to end: JSON, table, plot, and its errors."""

from __future__ import annotations

import json

import pytest
from support import compiled_digits, invoke

FAST = ("-b", "2", "--warmup", "0", "--repeats", "2", "--threads", "1", "-r", "onnx:masked", "-r", "onnx:stripped")


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    return compiled_digits(tmp_path_factory.mktemp("cli_bench"))


def test_benchmark_json_and_plot(compiled, tmp_path) -> None:
    _, out = compiled
    plot = tmp_path / "bench.png"
    result = invoke("benchmark", str(out), *FAST, "--json", "--plot", str(plot))
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert {t["runner"] for t in data["timings"]} == {"onnx:masked", "onnx:stripped"}
    assert data["comparisons"][0]["batch_size"] == 2 and data["comparisons"][0]["speedup_vs_masked_onnx"] > 0
    assert data["streaming"] == []  # no step runner asked for
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_benchmark_table(compiled) -> None:
    _, out = compiled
    result = invoke("benchmark", str(out), *FAST, "-r", "onnx-step")
    assert result.exit_code == 0, result.stderr
    assert "onnx:stripped" in result.stdout and "p50 ms" in result.stdout and "dense MACs" in result.stdout
    assert "streaming" in result.stdout and "p50 ms/step" in result.stdout
    assert (out / "benchmark.png").is_file()


def test_benchmark_errors(compiled, tmp_path) -> None:
    source, out = compiled
    result = invoke("benchmark", str(tmp_path))
    assert result.exit_code == 2 and "no manifest.json" in result.stderr
    moved = tmp_path / "moved"
    moved.mkdir()
    manifest = json.loads((out / "manifest.json").read_text())
    (moved / "manifest.json").write_text(json.dumps(manifest))
    result = invoke("benchmark", str(moved))  # the graphs were not copied along
    assert result.exit_code == 2 and "stripped.graph.json' does not exist" in result.stderr
    result = invoke("benchmark", str(out), "-r", "tvm")
    assert result.exit_code == 2 and "unknown runner 'tvm'" in result.stderr
