"""The latency harness and the masked-vs-stripped benchmark on a small compiled model."""

from __future__ import annotations

import json

import numpy as np
import pytest
from support import compiled_digits, invoke

from scadeploy.artifact.directory import open_compiled
from scadeploy.backends.openvino.runtime import openvino_available
from scadeploy.errors import UnsupportedError
from scadeploy.measure.harness import (
    EXACT_KINDS,
    BenchmarkResult,
    benchmark_compiled,
    expand_runners,
    parse_runner,
    step_timing,
    summarize,
    time_runners,
    variant_from_graph,
)
from scadeploy.measure.runners import TorchRefRunner


def test_summarize_percentiles_and_throughput() -> None:
    timing = summarize("r", 8, [i / 1000 for i in range(1, 101)])  # 1 .. 100 ms
    assert timing.p50_ms == pytest.approx(50.5) and timing.p90_ms == pytest.approx(90.1)
    assert timing.p99_ms == pytest.approx(99.01) and timing.min_ms == pytest.approx(1.0)
    assert timing.throughput == pytest.approx(8 / 0.0505)


def test_runner_specs() -> None:
    assert parse_runner("onnx") == ("onnx", "stripped")
    assert parse_runner("spikingjelly:masked") == ("spikingjelly", "masked")
    with pytest.raises(UnsupportedError, match="unknown runner 'tvm'"):
        parse_runner("tvm")


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    return compiled_digits(tmp_path_factory.mktemp("bench"))


def test_time_runners_interleaves_and_counts(compiled) -> None:
    source, out = compiled
    runner = TorchRefRunner(variant_from_graph("stripped", open_compiled(out).graph("stripped")).graph)
    timings = time_runners({"a": runner, "b": runner}, np.zeros((2, 1, 8, 8), np.float32), warmup=1, repeats=3,
                           progress=False)
    assert set(timings) == {"a", "b"} and all(t.repeats == 3 and t.p50_ms > 0 for t in timings.values())


def test_benchmark_compiled_compares_masked_and_stripped(compiled) -> None:
    source, out = compiled
    result = benchmark_compiled(open_compiled(out),
                                runners=("onnx:masked", "onnx:stripped", "onnx-blocked", "onnx-step",
                                         "spikingjelly:masked", "torch-ref"),
                                batch_sizes=(1, 3), threads=1, warmup=1, repeats=3, progress=False)
    assert len(result.timings) == 12
    assert all(diff <= 1e-4 for diff in result.agreement.values()), result.agreement
    assert result.dense_macs["masked"] > result.dense_macs["stripped"] > 0
    rows = result.comparisons()
    assert [r["batch_size"] for r in rows] == [1, 3]
    assert rows[0]["dense_mac_ratio"] == pytest.approx(result.dense_macs["masked"] / result.dense_macs["stripped"])
    assert rows[0]["speedup_vs_masked_onnx"] > 0 and "speedup_vs_spikingjelly_eager" in rows[0]
    assert result.to_dict()["settings"]["threads"] == 1
    assert result.settings["inputs"] == "uniform random inputs"  # what the checkpoint was compiled on


def test_streaming_latency_beside_the_whole_sequence(compiled) -> None:
    _, out = compiled
    result = benchmark_compiled(open_compiled(out), runners=("onnx:stripped", "onnx-step"), batch_sizes=(1, 4),
                                threads=1, warmup=1, repeats=3, progress=False)
    assert [(s.runner, s.batch_size) for s in result.streaming] == [("onnx-step:stripped", 1),
                                                                     ("onnx-step:stripped", 4)]
    for row in result.streaming:
        assert row.steps == 3 * row.timesteps and 0 < row.p50_ms <= row.p90_ms
        assert row.max_diff_vs_sequence == 0.0  # DIR's model.step.onnx, T steps, equals DIR's model.onnx
        sequence = result.timing("onnx:stripped", row.batch_size)
        assert row.sequence_p50_ms == sequence.p50_ms
        assert row.ratio_vs_sequence == pytest.approx(row.timesteps * row.p50_ms / sequence.p50_ms)
    assert result.to_dict()["streaming"][0]["per_sequence_ms"] == result.streaming[0].per_sequence_ms


def test_step_timing_reports_a_step_model_that_differs() -> None:
    measured = {"onnx:stripped": summarize("onnx:stripped", 2, [0.004])}
    logits = {"onnx-step:stripped": np.array([[1.0, 2.0]]), "onnx:stripped": np.array([[1.0, 2.5]])}
    row = step_timing("onnx-step:stripped", 2, 4, [0.001, 0.002], measured, logits)
    assert row.max_diff_vs_sequence == 0.5 and row.ratio_vs_sequence == pytest.approx(4 * 1.5 / 4.0)
    alone = step_timing("onnx-step:stripped", 2, 4, [0.001], {}, logits)  # no sequence runner measured
    assert alone.sequence_runner is None and alone.ratio_vs_sequence is None


def test_auto_expands_to_the_installed_exact_runtimes() -> None:
    expected = ["onnx:stripped", "onnx-blocked:stripped", *(["openvino:stripped"] if openvino_available() else []),
                "torch-compile:stripped"]
    assert expand_runners(["auto"]) == expected
    assert expand_runners(["onnx:masked", "auto", "onnx"]) == ["onnx:masked", *expected]  # each spec once
    on_gpu = expand_runners(["auto"], device="cuda")  # OpenVINO and the blocked layout run on the CPU only
    assert on_gpu == ["onnx:stripped", "torch-compile:stripped"]


def test_recommendation_is_the_fastest_exact_runtime_per_batch() -> None:
    timings = [summarize(name, batch, [ms / 1e3]) for name, batch, ms in (
        ("onnx:stripped", 1, 5.0), ("openvino:stripped", 1, 6.0), ("torch-compile:stripped", 1, 7.0),
        ("openvino-bf16:stripped", 1, 1.0),  # faster, but not an exact runtime
        ("onnx:masked", 1, 0.5),  # not the deployed model
        ("onnx:stripped", 16, 50.0), ("openvino:stripped", 16, 40.0), ("torch-compile:stripped", 16, 30.0))]
    agreement = {t.runner: 0.0 for t in timings} | {"torch-compile:stripped": 0.5}  # off: never recommended
    result = BenchmarkResult(timings, {"masked": 2, "stripped": 1}, agreement,
                             {"threads": 2, "device": "cpu", "repeats": 1})
    picks = result.recommendation()["by_batch_size"]
    assert {b: p["runtime"] for b, p in picks.items()} == {"1": "onnx", "16": "openvino"}
    assert picks["16"]["candidates_p50_ms"] == {"onnx": 50.0, "openvino": 40.0}
    assert result.to_dict()["recommended_runtime"]["by_batch_size"] == picks


@pytest.mark.slow
def test_benchmark_auto_records_the_pick_in_the_manifest(compiled) -> None:
    _, out = compiled
    before = json.loads((out / "manifest.json").read_text())
    result = invoke("benchmark", str(out), "-r", "auto", "-b", "2", "--warmup", "0", "--repeats", "2",
                    "--threads", "1")
    assert result.exit_code == 0, result.stderr
    assert "fastest exact runtime: batch 2:" in result.stdout and "compile time" in result.stdout
    manifest = json.loads((out / "manifest.json").read_text())
    pick = manifest["recommended_runtime"]["by_batch_size"]["2"]
    assert pick["runtime"] in EXACT_KINDS and pick["p50_ms"] == min(pick["candidates_p50_ms"].values())
    assert manifest | {"recommended_runtime": None} == before | {"recommended_runtime": None}  # nothing else changed
    assert not [p for p in out.iterdir() if p.name.startswith(".manifest.json")]  # no temporary file left
