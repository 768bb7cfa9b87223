"""`scadeploy benchmark DIR`: latency of the compiled model against the masked one and other runtimes."""

from __future__ import annotations

import os
from dataclasses import replace

# NOTE: OpenMP threads (torch and the kernels torch.compile generates) busy-wait between parallel regions
# by default. Timed among other runtimes' threads, or on cores shared with other processes, the spinning
# thread steals the working one's time slices: torch.compile measured 13 ms with sleeping waits and
# 496 ms with spinning ones (VGG-16, batch 1, 2 shared cores). Sleeping waits are what the ONNX Runtime
# runners get too (allow_spinning=false). libgomp reads this once, when torch is first imported, so it is
# set before this module imports torch; a value already in the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from pathlib import Path

import click

from scadeploy.artifact.layout import Layout
from scadeploy.artifact.manifest import write_manifest
from scadeploy.cli.common import console, echo_json, handles_errors, json_option
from scadeploy.measure.harness import (
    AUTO,
    DEFAULT_RUNNERS,
    RUNNER_KINDS,
    BenchmarkResult,
    benchmark_compiled,
)
from scadeploy.measure.report import make_table, save_line_plot

RECOMMENDED = "recommended_runtime"  # the manifest field `--runner auto` writes (`Manifest.recommended_runtime`)


def _print(result: BenchmarkResult) -> None:
    out = console()
    rows = [(t.runner, t.batch_size, t.p50_ms, t.p90_ms, t.p99_ms, t.throughput, result.agreement[t.runner],
             result.quality[t.runner].agreement.arithmetic, result.quality[t.runner].accuracy)
            for t in result.timings]
    columns = ["runner", "batch", "p50 ms", "p90 ms", "p99 ms", "samples/s", "max |Δlogit|", "precision", "accuracy"]
    out.print(make_table("latency", columns, rows, numeric=columns[1:7] + columns[8:]))
    compiled = {name: s for name, s in result.prepare_seconds.items() if name.startswith("torch-compile")}
    for name, seconds in compiled.items():
        out.print(f"{name} compile time (not in the latency): "
                  + ", ".join(f"batch {b}: {s:.1f} s" for b, s in seconds.items()))
    _print_streaming(result)
    comparisons = result.comparisons()
    if comparisons:
        keys = [k for k in comparisons[0] if k != "batch_size"]
        out.print(make_table("stripped ONNX speedups (ratios of p50 latency)", ["batch", *keys],
                             [[c["batch_size"], *(c.get(k) for k in keys)] for c in comparisons],
                             numeric=["batch", *keys]))
    settings, macs = result.settings, result.dense_macs
    recommended = result.recommendation()["by_batch_size"]
    if recommended:
        out.print("fastest exact runtime: " + ", ".join(f"batch {b}: {r['runtime']} ({r['p50_ms']:.2f} ms)"
                                                         for b, r in recommended.items()))
    out.print(f"{settings['threads']} threads, {settings['provider']}, T={settings['timesteps']}, inputs: "
              f"{settings['inputs']}; dense MACs per sample: masked {macs['masked']:,}, stripped {macs['stripped']:,}")


def _print_streaming(result: BenchmarkResult) -> None:
    """Per-step latency of the step runners beside the whole-sequence runner of the same model."""
    if not result.streaming:
        return
    columns = ["runner", "batch", "p50 ms/step", "p90 ms/step", "T·step ms", "seq p50 ms", "T·step/seq",
               "|Δlogit| vs seq"]
    rows = [(s.runner, s.batch_size, s.p50_ms, s.p90_ms, s.per_sequence_ms, s.sequence_p50_ms, s.ratio_vs_sequence,
             s.max_diff_vs_sequence) for s in result.streaming]
    title = "streaming: model.step.onnx, one call per time step, state kept in ONNX Runtime (I/O binding)"
    console().print(make_table(title, columns, rows, numeric=columns[1:]))


def plot(result: BenchmarkResult, path: Path) -> Path:
    """Throughput against batch size, one line per runner."""
    series: dict[str, tuple[list[int], list[float]]] = {}
    for t in result.timings:
        xs, ys = series.setdefault(t.runner, ([], []))
        xs.append(t.batch_size)
        ys.append(t.throughput)
    title = f"throughput, {result.settings['threads']} threads, T={result.settings['timesteps']}"
    return save_line_plot(path, series, title, "batch size", "samples / s", logx=True, logy=True)


@click.command("benchmark")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option("-b", "--batch-size", "batch_sizes", type=click.IntRange(min=1, max=65536), multiple=True,
              help="Batch size, repeatable (default: 1 and 16).")
@click.option("-r", "--runner", "runners", multiple=True, metavar="KIND[:masked|stripped]|auto",
              help=f"Runner, repeatable; KIND is one of {', '.join(RUNNER_KINDS)} "
                   f"(default: {' '.join(DEFAULT_RUNNERS)}). '{AUTO}' measures every available exact runtime "
                   "(onnx, onnx-blocked, openvino, torch-compile) on the stripped model and records the fastest "
                   "per batch size in DIR/manifest.json (recommended_runtime).")
@click.option("--threads", type=click.IntRange(min=1), default=2, show_default=True,
              help="Threads for ONNX Runtime (intra-op) and torch.")
@click.option("--warmup", type=click.IntRange(min=0), default=3, show_default=True, help="Untimed runs first.")
@click.option("--repeats", type=click.IntRange(min=1), default=20, show_default=True, help="Timed runs per runner.")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True,
              help="Device of every runner (cuda needs onnxruntime-gpu and a GPU).")
@click.option("--data", metavar="NAME|FILE",
              help="Inputs other than those DIR was compiled with: a built-in name, a .npz/.pt holding x, or "
                   "event recordings (.npy/.npz of x, y, t, p), binned for the sensor the model takes.")
@click.option("--data-dir", type=click.Path(file_okay=False), help="Directory of CIFAR batch files.")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False),
              help="PNG of throughput against batch size (default: DIR/benchmark.png).")
@json_option
@handles_errors
def command(directory: str, batch_sizes: tuple[int, ...], runners: tuple[str, ...], threads: int, warmup: int,
            repeats: int, device: str, data: str | None, data_dir: str | None, plot_path: str | None,
            as_json: bool) -> None:
    """Time the stripped model of DIR (from `scadeploy compile`) against its masked source.

    Everything comes from DIR: both graphs, DIR/model.onnx, and the inputs DIR was compiled with.
    Every runner runs in the same process, interleaved, after a warm-up; the table shows latency
    percentiles, throughput, agreement with the torch reference, and the stripped model's speedup
    over the masked ONNX model next to the ratio of their dense MACs. The spikingjelly runners run
    the graphs rebuilt from spikingjelly layers, so they need no model code. torch-compile's compile
    time is reported apart from its latency; openvino-bf16 is not exact, so its precision, logit
    deviation and (with labelled data) accuracy are shown beside its speed. onnx-step runs
    DIR/model.step.onnx one time step per call with the state kept in ONNX Runtime; its per-step
    latency (what a streaming deployment pays per event window) is shown beside the whole sequence's.
    onnx-blocked runs DIR/model.onnx with the neurons kept in ONNX Runtime's blocked conv layout
    (rewritten for this machine's CPU when the runner starts; bit for bit the same logits).

    \b
    Example:
      scadeploy benchmark out -b 1 -b 16 --threads 2
      scadeploy benchmark out -r onnx:stripped -r onnx:masked --json
      scadeploy benchmark out -r auto -r openvino-bf16
    """
    from scadeploy.artifact.directory import open_compiled

    out_dir = Path(directory)
    compiled = open_compiled(out_dir)
    result = benchmark_compiled(compiled, runners or DEFAULT_RUNNERS, batch_sizes or (1, 16), threads, warmup,
                                repeats, device=device, progress=not as_json, data=data, data_dir=data_dir)
    figure = plot(result, Path(plot_path) if plot_path else Layout(out_dir).benchmark_plot)
    recorded = None
    if AUTO in runners:
        recorded = write_manifest(out_dir, replace(compiled.manifest, recommended_runtime=result.recommendation()))
    if as_json:
        echo_json(result.to_dict() | {"plot": str(figure)})
        return
    _print(result)
    console().print(f"plot: {figure}")
    if recorded is not None:
        console().print(f"recommended runtime per batch size written to {recorded} ({RECOMMENDED})")
