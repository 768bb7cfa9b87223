"""One backend registry: what targets may name and what the compiler imports for them."""

from __future__ import annotations

import pytest

from scadeploy.compiler import backend_module
from scadeploy.errors import TargetError
from scadeploy.targets.registry import BACKENDS, lookup_backend


def test_the_registry_names_each_backend_once() -> None:
    assert list(BACKENDS) == ["onnx", "openvino", "lava", "nir"]
    assert all(spec.module == f"scadeploy.backends.{name}.export" for name, spec in BACKENDS.items())


@pytest.mark.parametrize("name", ["tensorrt", None, 3])
def test_an_unknown_backend_lists_the_known_keys(name: object) -> None:
    with pytest.raises(TargetError, match=f"target 'x' names backend {name!r}") as info:
        lookup_backend(name, "target 'x'")
    assert info.value.hint == "backend must be one of onnx, openvino, lava, nir"


def test_the_compiler_imports_what_the_registry_names() -> None:
    assert backend_module("nir").__name__ == BACKENDS["nir"].module
    with pytest.raises(TargetError, match="backend must be one of"):
        backend_module("tpu")
