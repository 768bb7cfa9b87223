"""Data: built-in datasets and readers of users' files, shared by training, compiling and evaluation.

`datasets` holds the built-in sets by name (digits, CIFAR files). Nothing here imports a backend
or the training package, so every side of scadeploy reads data the same way.
"""

from scadeploy.data.datasets import DATASETS, NORMALIZATION, dataset_info, load_dataset

__all__ = ["DATASETS", "NORMALIZATION", "dataset_info", "load_dataset"]
