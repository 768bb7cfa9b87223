"""`scadeploy demo`: the whole pipeline on the built-in digits data, with one summary table."""

from __future__ import annotations

from pathlib import Path

import click

from scadeploy.cli.common import console, echo_json, handles_errors, json_option

COLUMNS = ("stage", "accuracy %", "samples", "params", "dense MACs", "SynOps", "energy µJ", "latency ms", "runtime")


@click.command("demo")
@click.option("-o", "--output", "out_dir", default="demo-output", show_default=True, type=click.Path(file_okay=False),
              help="Directory for checkpoints, compiled models, report.json and figures.")
@click.option("--keep", "keep_ratio", default=0.3, show_default=True, type=click.FloatRange(0.05, 1.0),
              help="Fraction of prunable channels SCA keeps.")
@click.option("--epochs", type=click.IntRange(1), default=None, help="Training epochs (default: the digits recipe).")
@click.option("--lava-samples", default=50, show_default=True, type=click.IntRange(1),
              help="Test samples simulated on Lava itself (the emulator runs the whole test split).")
@click.option("--repeats", default=20, show_default=True, type=click.IntRange(1), help="Timed runs per runner.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--force", is_flag=True, help="Replace an existing output directory.")
@json_option
@handles_errors
def command(out_dir: str, keep_ratio: float, epochs: int | None, lava_samples: int, repeats: int, seed: int,
            force: bool, as_json: bool) -> None:
    """Train an SCA-pruned SNN on digits, compile it for ONNX and Lava, benchmark, simulate and summarise.

    Every stage (dense, masked, stripped on torch, ONNX Runtime, Lava fixed point) reports accuracy,
    parameters, dense MACs, SynOps, a compute-only energy estimate and latency. Writes report.json and
    PNG figures into the output directory.

    \b
    Example:
      scadeploy demo
      scadeploy demo --epochs 10 --lava-samples 20 -o /tmp/demo --force
    """
    from scadeploy.measure.report import make_table
    from scadeploy.studies.demo import DemoConfig, run_demo

    config = DemoConfig(Path(out_dir), keep_ratio, epochs, seed, lava_samples, repeats, force=force)
    say = (lambda _: None) if as_json else click.echo
    report = run_demo(config, say)
    if as_json:
        echo_json(report.to_dict())
        return
    rows = [(s.stage, s.accuracy, s.samples, s.params, s.dense_macs, s.synops, s.energy_uj, s.latency_ms, s.runtime)
            for s in report.stages]
    out = console()
    out.print(make_table("scadeploy demo: digits, T=4, IF neurons (per sample; energy is a compute-only estimate)",
                         COLUMNS, rows, numeric=COLUMNS[1:8]))
    out.print(f"report: {Path(out_dir) / 'report.json'}; figures: {', '.join(report.figures)}")
    out.print(f"total time {report.seconds / 60:.1f} min")
