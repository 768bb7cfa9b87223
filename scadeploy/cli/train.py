"""`scadeploy train`: train a spiking network with SCA channel pruning (or dense) and write its checkpoint."""

from __future__ import annotations

from pathlib import Path

import click
from tqdm import tqdm

from scadeploy.cli.common import echo_json, handles_errors, json_option
from scadeploy.data.datasets import DATASETS
from scadeploy.errors import OutputExistsError
from scadeploy.frontends.checkpoint import save_checkpoint
from scadeploy.models import MODEL_WIDTH_ARG, MODELS, NEURON_KINDS
from scadeploy.sca import EpochStats, TrainConfig, train
from scadeploy.sca.activity import SCORES
from scadeploy.sca.distributed import rank
from scadeploy.sca.regrow import REGROW_INITS
from scadeploy.sca.structure import RANKINGS


def epoch_line(stats: EpochStats, epochs: int) -> str:
    """One line per epoch: loss, accuracies, channels kept per layer and what the update changed."""
    kept = " ".join(f"{name}={n}" for name, n in stats.kept.items())
    return (f"epoch {stats.epoch:>3}/{epochs}  loss {stats.loss:.4f}  train {stats.train_accuracy:5.1f}%  "
            f"test {stats.test_accuracy:5.1f}%  kept {stats.kept_total}/{stats.channels_total} [{kept}]  "
            f"pruned {stats.pruned} regrown {stats.regrown}  lr {stats.lr:.3g}  {stats.seconds:.1f}s")


@click.command("train")
@click.option("--model", default="digits", show_default=True, type=click.Choice(list(MODELS)))
@click.option("--dataset", default="digits", show_default=True, type=click.Choice(list(DATASETS)))
@click.option("--data-dir", type=click.Path(file_okay=False), help="Directory of the CIFAR python batch files.")
@click.option("--keep", "keep_ratio", type=float, help="Fraction of prunable channels to keep (omit or 1.0: dense).")
@click.option("--alpha", type=float, help="Fraction kept by activity (with --beta, instead of the default split).")
@click.option("--beta", type=float, help="Fraction regrown by |dL/d gamma| (with --alpha).")
@click.option("--epochs", type=int,
              help="Epochs (default: the dataset's recipe, 40 for digits, 8 for mnist5k, 300 for CIFAR).")
@click.option("-T", "--timesteps", default=4, show_default=True, type=int)
@click.option("--neuron", default="if", show_default=True, type=click.Choice(list(NEURON_KINDS)))
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--batch-size", default=64, show_default=True, type=int, help="Per process.")
@click.option("--lr", type=float, help="Initial learning rate (default: the dataset's recipe).")
@click.option("--score", default="spike_v", show_default=True, type=click.Choice(list(SCORES)),
              help="Channel activity: spike + |v after reset|, or |v before reset|.")
@click.option("--grad-window", type=int,
              help="Last batches of an epoch whose |dL/d gamma| decides regrowth; 0: all (default: the recipe's, "
                   "0 for digits, 1 for CIFAR).")
@click.option("--prune-only", is_flag=True, help="Ablation: no regrowth, pruned channels never come back.")
@click.option("--floor", default=1, show_default=True, type=int, help="Channels every prunable layer keeps at least.")
@click.option("--ranking", default="layer_mean", show_default=True, type=click.Choice(list(RANKINGS)),
              help="layer_mean: divide each layer's activity and |dL/d gamma| by the layer's mean before the global "
                   "ranking (measured best: the paper's raw ranking starves layers whose inputs were pruned); "
                   "paper: the published rule.")
@click.option("--min-keep", default=0.0, show_default=True, type=float,
              help="Fraction of every prunable layer's channels it keeps at least (with --floor).")
@click.option("--warmup", default=0, show_default=True, type=int,
              help="Dense epochs before the first structure update (measured worse on digits; 0 is the paper's).")
@click.option("--ramp", default=0, show_default=True, type=int,
              help="Structure updates over which the kept fraction falls from 1 to --keep (cubic, Zhu & Gupta 2017); "
                   "0: the paper's fixed target from the first update.")
@click.option("--augment/--no-augment", default=None,
              help="Random shift (and flip for CIFAR) of training images (default: the dataset's recipe, measured: "
                   "off for digits and mnist5k, on for CIFAR).")
@click.option("--finetune", default=0, show_default=True, type=int,
              help="Epochs after --epochs with the structure frozen (pruned weights held at zero) and the learning "
                   "rate restarted, so the final widths are trained as such; 0: the paper's.")
@click.option("--finetune-lr", type=float, help="Initial learning rate of the fine-tuning phase (default: --lr).")
@click.option("--teacher", type=click.Path(dir_okay=False, exists=True),
              help="Checkpoint (e.g. the dense model) whose logits are distilled into the student.")
@click.option("--kd-weight", default=0.5, show_default=True, type=float,
              help="Share of the distillation term in the loss (with --teacher).")
@click.option("--kd-temperature", default=4.0, show_default=True, type=float,
              help="Softmax temperature of the distillation term (with --teacher).")
@click.option("--regrow-init", default="momentum", show_default=True, type=click.Choice(list(REGROW_INITS)),
              help="momentum: a regrown channel resumes where its momentum left it (the paper's); reinit: fresh "
                   "filter, BN and momentum.")
@click.option("--init", type=click.Path(dir_okay=False, exists=True),
              help="Checkpoint of the same model and widths (e.g. the dense model) whose weights training starts "
                   "from, instead of a random initialisation.")
@click.option("--bn-recalibrate", default=0, show_default=True, type=int, metavar="BATCHES",
              help="Re-estimate batch-norm statistics on this many training batches before every evaluation, so "
                   "the saved network carries the statistics of its final weights and masks; 0: the paper's.")
@click.option("--width", "widths", multiple=True, type=int,
              help="Width of each prunable layer in order (repeat), instead of the model's default.")
@click.option("--device", default="cpu", show_default=True, help="cpu or cuda.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="Checkpoint file to write.")
@click.option("--force", is_flag=True, help="Overwrite an existing checkpoint file.")
@json_option
@handles_errors
def command(output: str, force: bool, as_json: bool, widths: tuple[int, ...], **options) -> None:
    """Train a spiking network, pruning channels with SCA, and write a checkpoint for `scadeploy compile`.

    Prints one line per epoch; under `torchrun` every process trains on its share and process 0 writes.

    \b
    Examples:
      scadeploy train --keep 0.3 -o digits.pt
      scadeploy train --keep 0.2 --ranking paper -o paper-rule.pt
      scadeploy train --model vgg_mnist --dataset mnist5k --keep 0.2 -o mnist.pt
      scadeploy train --model vgg_mnist_wide --dataset mnist5k --epochs 12 -o dense.pt
      scadeploy train --model vgg_mnist_wide --dataset mnist5k --keep 0.2 --ramp 4 --finetune 4 \\
          --teacher dense.pt --init dense.pt --lr 0.02 --regrow-init reinit --bn-recalibrate 16 -o sca.pt
      scadeploy train --model vgg16 --dataset cifar10 --data-dir data --keep 0.3 -o vgg.pt
      torchrun --nproc_per_node 2 -m scadeploy train --keep 0.3 -o digits.pt
    """
    path = Path(output)
    if path.exists() and not force:
        raise OutputExistsError(f"'{path}' exists", "pass --force to overwrite it")
    if widths:
        options["model_kwargs"] = {MODEL_WIDTH_ARG[options["model"]]: list(widths)}
    config = TrainConfig(**options).resolved()
    show = not as_json and rank() == 0
    # NOTE: delay keeps the bar off the screen when loading the data fails at once (one clean error line).
    with tqdm(total=None, desc="training", unit="batch", leave=False, disable=not show, dynamic_ncols=True,
              delay=0.5) as bar:
        def on_step(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        def on_epoch(stats: EpochStats) -> None:
            if show:
                bar.write(epoch_line(stats, config.total_epochs))

        result = train(config, on_step=on_step, on_epoch=on_epoch)
    if rank() != 0:
        return
    save_checkpoint(result.checkpoint, path)
    if as_json:
        echo_json({"checkpoint": str(path), **result.summary()})
        return
    accuracy = result.checkpoint.meta["accuracy"]
    click.echo(f"wrote {path}: test accuracy {accuracy['last']:.2f}% (best {accuracy['best']:.2f}% at epoch "
               f"{accuracy['best_epoch']}), {result.history[-1].kept_total}/{result.history[-1].channels_total} "
               f"prunable channels kept, {result.seconds:.0f} s")
