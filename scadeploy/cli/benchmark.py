"""`scadeploy benchmark DIR`: latency of the compiled model against the masked one and other runtimes."""

from __future__ import annotations

from pathlib import Path

import click

from scadeploy.checkpoint import load_checkpoint, sha256_of
from scadeploy.cli.common import console, echo_json, handles_errors, json_option
from scadeploy.errors import CheckpointError
from scadeploy.manifest import read_manifest
from scadeploy.measure.harness import DEFAULT_RUNNERS, RUNNER_KINDS, BenchmarkResult, benchmark_checkpoints
from scadeploy.measure.report import make_table, save_line_plot


def _source_checkpoint(out_dir: Path, manifest: dict, override: str | None) -> Path:
    """The masked checkpoint the directory was compiled from, checked against its recorded sha256."""
    source = manifest.get("source") or {}
    path = Path(override or source.get("path", ""))
    if not path.is_file():
        raise CheckpointError(f"the source checkpoint '{path}' of '{out_dir}' is missing",
                              "pass its current location with --source")
    if override is None and source.get("sha256") and sha256_of(path) != source["sha256"]:
        raise CheckpointError(f"'{path}' changed since '{out_dir}' was compiled (sha256 differs)",
                              "re-run scadeploy compile, or pass the original file with --source")
    return path


def _print(result: BenchmarkResult) -> None:
    out = console()
    rows = [(t.runner, t.batch_size, t.p50_ms, t.p90_ms, t.p99_ms, t.throughput, result.agreement[t.runner])
            for t in result.timings]
    columns = ["runner", "batch", "p50 ms", "p90 ms", "p99 ms", "samples/s", "max |Δlogit|"]
    out.print(make_table("latency", columns, rows, numeric=columns[1:]))
    comparisons = result.comparisons()
    if comparisons:
        keys = [k for k in comparisons[0] if k != "batch_size"]
        out.print(make_table("stripped ONNX speedups (ratios of p50 latency)", ["batch", *keys],
                             [[c["batch_size"], *(c.get(k) for k in keys)] for c in comparisons],
                             numeric=["batch", *keys]))
    settings, macs = result.settings, result.dense_macs
    out.print(f"{settings['threads']} threads, {settings['provider']}, T={settings['timesteps']}, "
              f"dense MACs per sample: masked {macs['masked']:,}, stripped {macs['stripped']:,}")


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
@click.option("-b", "--batch-size", "batch_sizes", type=click.IntRange(min=1), multiple=True,
              help="Batch size, repeatable (default: 1 and 16).")
@click.option("-r", "--runner", "runners", multiple=True, metavar="KIND[:masked|stripped]",
              help=f"Runner, repeatable; KIND is one of {', '.join(RUNNER_KINDS)} "
                   f"(default: {' '.join(DEFAULT_RUNNERS)}).")
@click.option("--threads", type=click.IntRange(min=1), default=2, show_default=True,
              help="Threads for ONNX Runtime (intra-op) and torch.")
@click.option("--warmup", type=click.IntRange(min=0), default=3, show_default=True, help="Untimed runs first.")
@click.option("--repeats", type=click.IntRange(min=1), default=20, show_default=True, help="Timed runs per runner.")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True,
              help="Device of every runner (cuda needs onnxruntime-gpu and a GPU).")
@click.option("--source", type=click.Path(dir_okay=False), help="The masked checkpoint, if it moved since compile.")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False),
              help="PNG of throughput against batch size (default: DIR/benchmark.png).")
@json_option
@handles_errors
def command(directory: str, batch_sizes: tuple[int, ...], runners: tuple[str, ...], threads: int, warmup: int,
            repeats: int, device: str, source: str | None, plot_path: str | None, as_json: bool) -> None:
    """Time the stripped model of DIR (from `scadeploy compile`) against its masked source.

    Every runner runs in the same process, interleaved, after a warm-up; the table shows latency
    percentiles, throughput, agreement with the torch reference, and the stripped model's speedup
    over the masked ONNX model next to the ratio of their dense MACs.

    \b
    Example:
      scadeploy benchmark out -b 1 -b 16 --threads 2
      scadeploy benchmark out -r onnx:stripped -r onnx:masked --json
    """
    out_dir = Path(directory)
    manifest = read_manifest(out_dir)
    masked = load_checkpoint(_source_checkpoint(out_dir, manifest, source))
    stripped = load_checkpoint(out_dir / "stripped.pt")
    onnx_file = out_dir / "model.onnx"
    result = benchmark_checkpoints(
        masked, stripped, runners or DEFAULT_RUNNERS, batch_sizes or (1, 16), threads, warmup, repeats,
        stripped_onnx=onnx_file if onnx_file.is_file() and device == "cpu" else None, device=device,
        progress=not as_json,
    )
    figure = plot(result, Path(plot_path) if plot_path else out_dir / "benchmark.png")
    if as_json:
        echo_json(result.to_dict() | {"plot": str(figure)})
        return
    _print(result)
    console().print(f"plot: {figure}")
