"""Train an SCA-pruned spiking network on the built-in digits data from Python, then strip it.

    .venv/bin/python examples/train_digits.py [--epochs 40] [--keep 0.3] [-o digits_sca.pt]

Same as `scadeploy train --keep 0.3 --width 32 --width 64 --width 64 -o digits_sca.pt`: IF neurons,
T = 4, SCA keeping 30% of the prunable channels (alpha 0.1 by activity + beta 0.2 regrown by
|dL/d gamma|), the digits recipe of `scadeploy.sca.config`. A few minutes on two CPU cores.
"""

from __future__ import annotations

import argparse

from scadeploy.compiler import compile_model
from scadeploy.data import load_dataset
from scadeploy.frontends.checkpoint import save_checkpoint
from scadeploy.sca import EpochStats, TrainConfig, train


def show(stats: EpochStats) -> None:
    print(f"epoch {stats.epoch:>2}: loss {stats.loss:.3f}, test {stats.test_accuracy:.1f}%, "
          f"kept {stats.kept_total}/{stats.channels_total}, pruned {stats.pruned}, regrown {stats.regrown}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--keep", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("-o", "--output", default="digits_sca.pt")
    args = parser.parse_args()

    config = TrainConfig(model="digits", dataset="digits", keep_ratio=args.keep, epochs=args.epochs, seed=args.seed,
                         timesteps=4, neuron="if", model_kwargs={"widths": [32, 64, 64]})
    result = train(config, on_epoch=show)
    save_checkpoint(result.checkpoint, args.output)
    accuracy = result.checkpoint.meta["accuracy"]
    print(f"wrote {args.output}: last {accuracy['last']:.2f}%, best {accuracy['best']:.2f}%, {result.seconds:.0f} s")

    # The pruned channels are exactly silent, so stripping them changes no spike.
    ckpt = result.checkpoint
    samples = load_dataset("digits", train=False).tensors[0][:32]
    compiled = compile_model(ckpt.build(), ckpt.masks, samples, ckpt.timesteps)
    print(f"stripped {compiled.report.removed} channels; parameters {compiled.masked.num_params():,} -> "
          f"{compiled.stripped.num_params():,}; stripped vs masked exact: {compiled.parity.exact}")


if __name__ == "__main__":
    main()
