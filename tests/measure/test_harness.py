"""The latency harness and the masked-vs-stripped benchmark on a small compiled model."""

from __future__ import annotations

import numpy as np
import pytest
from support import compiled_digits

from scadeploy.compiled import open_compiled
from scadeploy.errors import UnsupportedError
from scadeploy.measure.harness import benchmark_compiled, parse_runner, summarize, time_runners, variant_from_graph
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
                                runners=("onnx:masked", "onnx:stripped", "onnx-step", "spikingjelly:masked",
                                         "torch-ref"),
                                batch_sizes=(1, 3), threads=1, warmup=1, repeats=3, progress=False)
    assert len(result.timings) == 10
    assert all(diff <= 1e-4 for diff in result.agreement.values()), result.agreement
    assert result.dense_macs["masked"] > result.dense_macs["stripped"] > 0
    rows = result.comparisons()
    assert [r["batch_size"] for r in rows] == [1, 3]
    assert rows[0]["dense_mac_ratio"] == pytest.approx(result.dense_macs["masked"] / result.dense_macs["stripped"])
    assert rows[0]["speedup_vs_masked_onnx"] > 0 and "speedup_vs_spikingjelly_eager" in rows[0]
    assert result.to_dict()["settings"]["threads"] == 1
    assert result.settings["inputs"] == "uniform random inputs"  # what the checkpoint was compiled on
