"""Digits on Loihi fixed point: SCA-train, compile for loihi2-sim, then simulate with the emulator and Lava.

Writes benchmarks/results/lava_digits.json: float vs fixed-point accuracy on the whole test split
(emulator), accuracy and spike-exactness on Lava itself for the first --lava-samples images, and
simulation speed of both.

    .venv/bin/python benchmarks/lava_digits.py [--epochs 15] [--keep 0.5] [--lava-samples 50]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import torch

from scadeploy.backends.lava.evaluate import simulate
from scadeploy.compiler import compile_checkpoint
from scadeploy.frontends.checkpoint import save_checkpoint
from scadeploy.sca.config import TrainConfig
from scadeploy.sca.trainer import train

RESULTS = Path(__file__).resolve().parent / "results" / "lava_digits.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--keep", type=float, default=0.5)
    parser.add_argument("--neuron", default="if", choices=("if", "lif"))
    parser.add_argument("--lava-samples", type=int, default=50)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.manual_seed(0)
    start = time.perf_counter()
    trained = train(TrainConfig(keep_ratio=args.keep, epochs=args.epochs, neuron=args.neuron))
    train_seconds = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = save_checkpoint(trained.checkpoint, Path(tmp) / "digits.pt")
        _, manifest = compile_checkpoint(ckpt, Path(tmp) / "out", ("loihi2-sim",))
        emulator = simulate(Path(tmp) / "out", "emulator")
        lava = simulate(Path(tmp) / "out", "lava", samples=args.lava_samples)
        lava_emulator = simulate(Path(tmp) / "out", "emulator", samples=args.lava_samples)
    section = manifest.targets["loihi2-sim"]
    results = {
        "command": f"benchmarks/lava_digits.py --epochs {args.epochs} --keep {args.keep} --neuron {args.neuron} "
                   f"--lava-samples {args.lava_samples}",
        "machine": {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "platform": platform.platform()},
        "training": {"seconds": round(train_seconds, 1)} | {k: v for k, v in trained.summary().items()
                                                            if k != "history"},
        "compile_parity": dict(section.parity),
        "resources": {k: section.details["resources"][k] for k in ("label", "cores", "neurons", "synapses")},
        "emulator_whole_test_split": emulator.to_dict(),
        "lava": lava.to_dict(),
        "emulator_on_lava_samples": {"accuracy": lava_emulator.accuracy, "samples": lava_emulator.samples},
        "summary": {
            "float_accuracy": emulator.float_accuracy,
            "fixed_point_accuracy": emulator.accuracy,
            "accuracy_gap_points": 100 * (emulator.float_accuracy - emulator.accuracy),
            "lava_accuracy": lava.accuracy,
            "lava_float_accuracy_same_samples": lava.float_accuracy,
            "lava_spikes_differing_from_emulator": lava.emulator_spike_mismatches,
            "lava_steps_per_second": lava.steps_per_second,
            "emulator_steps_per_second": emulator.steps_per_second,
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results["summary"], indent=2))


if __name__ == "__main__":
    main()
