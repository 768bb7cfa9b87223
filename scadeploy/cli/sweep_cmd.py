"""`scadeploy sweep`: keep ratios against the dense and from-scratch baselines, deployed and measured, one plot."""

from __future__ import annotations

import click
from tqdm import tqdm

from scadeploy.cli.common import echo_json, handles_errors, json_option
from scadeploy.data.datasets import DATASETS
from scadeploy.models import MODEL_WIDTH_ARG, MODELS
from scadeploy.sca import TrainConfig
from scadeploy.sca.structure import RANKINGS


@click.command("sweep")
@click.option("--model", default="digits", show_default=True, type=click.Choice(list(MODELS)))
@click.option("--dataset", default="digits", show_default=True, type=click.Choice(list(DATASETS)))
@click.option("--data-dir", type=click.Path(file_okay=False), help="Directory of the CIFAR python batch files.")
@click.option("--keep", "keeps", multiple=True, type=float, required=True,
              help="A keep ratio in (0, 1) to train with SCA (repeat).")
@click.option("--epochs", type=int, help="Epochs of every run (default: the dataset's recipe).")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--width", "widths", multiple=True, type=int, help="Width of each prunable layer of the dense model.")
@click.option("--ranking", default="layer_mean", show_default=True, type=click.Choice(list(RANKINGS)),
              help="Score ranking of the SCA runs (see `scadeploy train --help`).")
@click.option("--min-keep", default=0.0, show_default=True, type=float,
              help="Fraction of every prunable layer's channels it keeps at least.")
@click.option("--warmup", default=0, show_default=True, type=int, help="Dense epochs before the first update.")
@click.option("--augment/--no-augment", default=None, help="Augment training images (default: the recipe's).")
@click.option("--prune-only/--no-prune-only", default=True, show_default=True,
              help="Also train prune-only (no regrowth) at every keep ratio.")
@click.option("--scratch/--no-scratch", default=True, show_default=True,
              help="Also train a dense network from scratch at the widths each SCA run ends with.")
@click.option("--threads", default=1, show_default=True, type=click.IntRange(1),
              help="Torch and ONNX Runtime threads.")
@click.option("--repeats", default=20, show_default=True, type=click.IntRange(1), help="Timed latency runs per model.")
@click.option("--synops-samples", default=64, show_default=True, type=click.IntRange(1),
              help="Test samples SynOps are counted on.")
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False),
              help="Directory of the sweep; runs already in it are not redone.")
@json_option
@handles_errors
def command(keeps: tuple[float, ...], widths: tuple[int, ...], prune_only: bool, scratch: bool, threads: int,
            repeats: int, synops_samples: int, output: str, as_json: bool, **options) -> None:
    """Train SCA at several keep ratios beside dense, from-scratch and prune-only runs; deploy and measure each.

    Every run is compiled to onnx-cpu and measured: last-epoch test accuracy, SynOps, dense MACs and
    ONNX Runtime latency. Writes DIR/sweep.json and DIR/sweep.png (accuracy against SynOps and
    against latency, with the Pareto front). Rerunning with the same DIR resumes.

    \b
    Examples:
      scadeploy sweep --keep 0.5 --keep 0.3 --epochs 3 -o sweep-digits
      scadeploy sweep --model vgg_mnist --dataset mnist5k --keep 0.3 --keep 0.2 --keep 0.1 -o sweep-mnist
    """
    from scadeploy.studies.sweep import SweepPlan, run_labels, run_sweep

    if widths:
        options["model_kwargs"] = {MODEL_WIDTH_ARG[options["model"]]: list(widths)}
    plan = SweepPlan(TrainConfig(**options), tuple(keeps), prune_only, scratch, synops_samples=synops_samples,
                     latency_repeats=repeats, threads=threads)
    plan.validate()
    total = len(run_labels(plan))
    with tqdm(total=total, desc="runs", unit="run", disable=as_json, position=0, dynamic_ncols=True) as runs, \
            tqdm(total=None, desc="training", unit="batch", disable=as_json, position=1, leave=False,
                 dynamic_ncols=True) as steps:
        def on_run(label: str, done: int, _: int) -> None:
            runs.set_postfix_str(label)
            runs.update(done - runs.n)

        def on_step(done: int, all_steps: int) -> None:
            if steps.total != all_steps or done < steps.n:
                steps.reset(all_steps)
            steps.update(done - steps.n)

        report = run_sweep(plan, output, on_run, on_step)
        runs.update(total - runs.n)
    if as_json:
        echo_json(report)
        return
    click.echo(f"{'run':<18}{'acc %':>7}{'kept':>18}{'SynOps':>12}{'dense MACs':>12}{'latency ms':>12}")
    for run in report["runs"]:
        kept = "-".join(str(v) for v in run["kept"].values())
        click.echo(f"{run['label']:<18}{run['accuracy']:>7.2f}{kept:>18}{run['synops']:>12.3g}"
                   f"{run['dense_macs']:>12.3g}{run['latency_ms']:>12.3f}")
    click.echo(f"Pareto front (SynOps): {', '.join(report['pareto']['synops'])}")
    click.echo(f"wrote {output}/sweep.json and {output}/sweep.png")
