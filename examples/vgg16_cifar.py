"""VGG-16 on CIFAR-10 (or -100) from the official "python version" files: SCA-train, strip, deploy.

    .venv/bin/python examples/vgg16_cifar.py --data-dir ~/data [--dataset cifar10] [--epochs 300] [-o vgg_out]

`--data-dir` holds `cifar-10-batches-py/` (or the batch files themselves); nothing is downloaded.
The paper's recipe is 300 epochs (SGD 0.01, momentum 0.9, flip + crop); on a CPU use --epochs for a
short run. Writes OUT/vgg16_sca.pt and OUT/compiled/ (stripped.pt, manifest.json, model.onnx).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from scadeploy.compiler import compile_checkpoint
from scadeploy.frontends.checkpoint import save_checkpoint
from scadeploy.sca import TrainConfig, train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--dataset", default="cifar10", choices=["cifar10", "cifar100"])
    parser.add_argument("--epochs", type=int, default=None, help="default: the paper's 300")
    parser.add_argument("--keep", type=float, default=0.3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("-o", "--out", default="vgg_out")
    args = parser.parse_args()

    config = TrainConfig(model="vgg16", dataset=args.dataset, data_dir=args.data_dir, keep_ratio=args.keep,
                         epochs=args.epochs, device=args.device)
    result = train(config, on_epoch=lambda s: print(f"epoch {s.epoch}: loss {s.loss:.3f}, test "
                                                     f"{s.test_accuracy:.1f}%, kept {s.kept_total}/{s.channels_total}"))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    save_checkpoint(result.checkpoint, out / "vgg16_sca.pt")

    compiled, manifest = compile_checkpoint(out / "vgg16_sca.pt", out / "compiled", ("onnx-cpu",), force=True)
    params, macs = manifest.costs.params, manifest.costs.dense_macs_per_step
    print(f"params {params.before:,} -> {params.after:,}; dense MACs per step {macs.before:,} -> "
          f"{macs.after:,}; stripped == masked: {compiled.parity.exact}")
    print(f"ONNX parity: {dict(manifest.targets['onnx-cpu'].parity)}")
    print(f"next: scadeploy benchmark {out / 'compiled'}")


if __name__ == "__main__":
    main()
