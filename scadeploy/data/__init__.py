"""Data: built-in datasets and readers of users' files, shared by training, compiling and evaluation.

`datasets` holds the built-in sets by name (digits, CIFAR files); `samples` reads them or a user's
file (frames or sequences) for compile, benchmark and simulate; `events` makes event-camera style
input. Nothing here imports a backend or the training package, so every side reads data alike.
"""

from scadeploy.data.datasets import DATASETS, NORMALIZATION, dataset_info, load_dataset
from scadeploy.data.samples import Samples, load_samples, random_samples

__all__ = ["DATASETS", "NORMALIZATION", "Samples", "dataset_info", "load_dataset", "load_samples",
           "random_samples"]
