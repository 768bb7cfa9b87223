"""Seeded mutations of scadeploy's inputs: checkpoint fields, HDF5 files, JSON and TOML files, raw bytes.

Every mutator takes a `random.Random` and returns a short description of what it changed, so a
failing case names its seed and its change and can be replayed exactly. The file mutators are
generic ("a file in the compiled directory"): `mutate_file` picks a structured mutation by what
the file holds (HDF5, JSON, TOML), or a byte-level one.
"""

from __future__ import annotations

import copy
import json
import math
import random
import tomllib
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch

# Values of the wrong type, sign or size, for any field.
HOSTILE: tuple[Any, ...] = (
    None, True, False, 0, -1, 1, 3, 2**31, 2**63 - 1, -(2**63), 10**6, 1.5, -0.5, math.nan, math.inf, -math.inf,
    "", "x", "digits", "é\x00", "x" * 5000, [], [0], [1, 2], [10**6, 10**6, 10**6], [-1, 8, 8], {}, {"a": 1},
    {"1": [None]}, [[[[[[]]]]]], b"\xff\xfe",
)


def hostile_tensor(rng: random.Random, like: torch.Tensor | None = None) -> torch.Tensor:
    """A tensor that is wrong in one way: shape, dtype, values, or emptiness."""
    shape = tuple(like.shape) if like is not None else (rng.randint(1, 20),)
    choice = rng.randrange(10)
    if choice == 0:
        return torch.full(shape, math.nan)
    if choice == 1:
        return torch.full(shape, math.inf)
    if choice == 2:
        return torch.zeros(shape, dtype=rng.choice([torch.int64, torch.int8, torch.bool, torch.uint8]))
    if choice == 3:
        return torch.zeros(0)
    if choice == 4:
        return torch.ones(tuple(reversed(shape)) + (2,))
    if choice == 5:
        return torch.tensor(rng.choice([0.0, 1.0, 2.0, -1.0]))
    if choice == 6:
        return torch.full(shape, rng.choice([1e30, -1e30, 2.0, -3.0]), dtype=torch.float64)
    if choice == 7:
        return torch.randn(shape).to(torch.float16)
    if choice == 8:
        return torch.zeros(shape, dtype=torch.complex64)
    return torch.ones(tuple(s + rng.randint(1, 3) for s in shape) or (2,))


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key path into nested dicts (tensors and lists are leaves)."""
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, child in node.items():
            found += _paths(child, prefix + (key,))
    return found


def _get(root: dict, path: tuple) -> Any:
    for key in path:
        root = root[key]
    return root


def mutate_fields(raw: dict, rng: random.Random) -> tuple[dict, str]:
    """A deep copy of a checkpoint dict with one to three field-level changes."""
    raw = copy.deepcopy(raw)
    changes = [_mutate_field(raw, rng) for _ in range(rng.choice([1, 1, 1, 2, 3]))]
    return raw, "; ".join(changes)


def _mutate_field(raw: dict, rng: random.Random) -> str:
    paths = _paths(raw)
    # Weight the fields a loader reads most: the top level, arch, masks and the scalars.
    focus = [p for p in paths if p[0] in ("arch", "masks", "timesteps", "input_shape", "num_classes", "meta",
                                          "neuron", "format", "version") or len(p) == 1]
    path = rng.choice(focus if rng.random() < 0.7 else paths)
    parent = _get(raw, path[:-1])
    key = path[-1]
    old = parent[key]
    op = rng.randrange(6)
    if op == 0:
        del parent[key]
        return f"delete {'.'.join(map(str, path))}"
    if op == 1:
        parent[rng.choice(["extra", "zz", 7, "state_dict.x"])] = rng.choice(HOSTILE)
        return f"extra key beside {'.'.join(map(str, path))}"
    if op == 2 or not isinstance(old, torch.Tensor | int | float | list):
        value = rng.choice(HOSTILE)
        parent[key] = value
        return f"{'.'.join(map(str, path))} = {value!r:.40}"
    if isinstance(old, torch.Tensor) or op == 3:
        parent[key] = hostile_tensor(rng, old if isinstance(old, torch.Tensor) else None)
        return f"{'.'.join(map(str, path))} = bad tensor"
    if isinstance(old, int | float) and not isinstance(old, bool):
        value = rng.choice([-old, 0, old * 1000, old + 1, old - 1, 2**40, float(old) + 0.5, math.nan])
        parent[key] = value
        return f"{'.'.join(map(str, path))} = {value!r}"
    value = list(old) + [rng.choice([1, 8, 10**5])] if rng.random() < 0.5 else list(old)[:-1]
    parent[key] = value
    return f"{'.'.join(map(str, path))} = {value!r:.40}"


def mutate_bytes(data: bytes, rng: random.Random, donor: bytes = b"") -> tuple[bytes, str]:
    """Bit flips, truncation, a splice (from `donor` or the file itself), a zeroed or repeated range."""
    if not data:
        return b"\x00", "empty -> one byte"
    op = rng.randrange(5)
    buf = bytearray(data)
    if op == 0:
        count = rng.choice([1, 1, 2, 8, 64])
        for _ in range(count):
            i = rng.randrange(len(buf))
            buf[i] ^= 1 << rng.randrange(8)
        return bytes(buf), f"{count} bit flips"
    if op == 1:
        cut = rng.randrange(len(buf))
        return bytes(buf[:cut]), f"truncated to {cut} bytes"
    if op == 2:
        source = donor or data
        start, length = rng.randrange(len(source)), rng.randint(1, 512)
        at = rng.randrange(len(buf))
        return bytes(buf[:at] + source[start:start + length] + buf[at + length:]), f"splice {length} bytes at {at}"
    if op == 3:
        at, length = rng.randrange(len(buf)), rng.randint(1, 256)
        buf[at:at + length] = bytes(len(buf[at:at + length]))
        return bytes(buf), f"zeroed {length} bytes at {at}"
    at, length = rng.randrange(len(buf)), rng.randint(1, 256)
    return bytes(buf[:at + length] + buf[at:]), f"repeated {length} bytes at {at}"


# ---- files of a compiled directory --------------------------------------------------------------


def mutate_file(path: Path, rng: random.Random) -> str:
    """Change `path` in place: structurally by its content (HDF5, JSON, TOML) most of the time, else its bytes."""
    data = path.read_bytes()
    if rng.random() < 0.8:
        if data.startswith(b"\x89HDF"):
            return mutate_hdf5(path, rng)
        try:
            return _rewrite_json(path, json.loads(data), rng)
        except (json.JSONDecodeError, UnicodeDecodeError):
            pass
        try:
            return _rewrite_toml(path, tomllib.loads(data.decode()), rng)
        except (tomllib.TOMLDecodeError, UnicodeDecodeError):
            pass
    mutated, what = mutate_bytes(data, rng)
    path.write_bytes(mutated)
    return what


def _hdf5_objects(f: h5py.File) -> list[tuple[str, str | None]]:
    """(object path, attribute name or None) for every dataset, group and attribute, soft links included."""
    found: list[tuple[str, str | None]] = []

    def visit(name: str, obj: object) -> None:
        found.append((name, None))
        for attr in getattr(obj, "attrs", {}):
            found.append((name, attr))

    f.visititems_links(lambda name, link: visit(name, f.get(name)) if f.get(name) is not None
                       else found.append((name, None)))
    for attr in f.attrs:
        found.append(("", attr))
    return found


HDF5_VALUES: tuple[Any, ...] = (
    -1, 0, 2**40, 3.5, math.nan, "text", b"bytes", np.array([1, 2, 3, 4, 5]), np.array([], dtype=np.int64),
    np.array([[1, 2], [3, 4]]), np.array([math.nan]), True, np.int64(2**62), np.array([-7, 0]),
)


def mutate_hdf5(path: Path, rng: random.Random) -> str:
    """Change, remove or retype one attribute, dataset or group of an HDF5 file."""
    with h5py.File(path, "r+") as f:
        objects = _hdf5_objects(f)
        name, attr = rng.choice(objects)
        if attr is not None:
            if rng.random() < 0.3:
                del f[name or "/"].attrs[attr]
                return f"delete attribute {name}@{attr}"
            value = rng.choice(HDF5_VALUES)
            f[name or "/"].attrs[attr] = value
            return f"{name}@{attr} = {value!r:.40}"
        op = rng.randrange(4)
        if op == 0:
            del f[name]
            return f"delete {name}"
        link = f.get(name, getlink=True)
        node = f.get(name)
        if op == 1 and isinstance(node, h5py.Dataset) and not isinstance(link, h5py.SoftLink):
            data = node[()]
            if isinstance(data, np.ndarray) and data.size and np.issubdtype(data.dtype, np.number):
                data = data.copy()
                flat = data.reshape(-1)
                flat[rng.randrange(flat.size)] = rng.choice([2**15 - 1, -(2**15), 10**6, -1, 0, 255])
                node[...] = data
                return f"{name}: one value changed"
        del f[name]
        value = rng.choice(HDF5_VALUES)
        if isinstance(value, str):
            f.create_dataset(name, data=value)
        else:
            f.create_dataset(name, data=np.asarray(value))
        return f"{name} replaced by {value!r:.40}"


def _json_paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, child in node.items():
            found += _json_paths(child, prefix + (key,))
    elif isinstance(node, list):
        for i, child in enumerate(node[:8]):
            found += _json_paths(child, prefix + (i,))
    return found


JSON_VALUES: tuple[Any, ...] = (None, True, 0, -1, 10**30, 1.5, "", "../../nowhere", "model.net", [], [1], {},
                                {"backend": "lava"}, {"files": []}, "x" * 300)


def _rewrite_json(path: Path, data: Any, rng: random.Random) -> str:
    paths = _json_paths(data)
    if not paths or rng.random() < 0.05:
        data, what = rng.choice(JSON_VALUES), "whole file replaced"
    else:
        key_path = rng.choice(paths)
        parent = data
        for key in key_path[:-1]:
            parent = parent[key]
        if rng.random() < 0.3:
            del parent[key_path[-1]]
            what = f"delete {key_path}"
        else:
            value = rng.choice(JSON_VALUES)
            parent[key_path[-1]] = value
            what = f"{key_path} = {value!r:.40}"
    path.write_text(json.dumps(data))
    return what


TOML_VALUES: tuple[str, ...] = ('-1', '0', '1', '9', '10', '33', '1e400', 'nan', 'inf', '-inf', '"eight"', 'true',
                                '[]', '[1, 2]', '{a = 1}', '99999999999', '2.5', '"lava"', '"onnx"', '""')


def _rewrite_toml(path: Path, data: dict, rng: random.Random) -> str:
    """A TOML file rebuilt from its tables with one value changed, removed or added."""
    flat = [(table, key) for table, key in _toml_leaves(data)]
    lines: dict[str, list[str]] = {}
    for table, key in flat:
        value = _get(data, (*table.split("."), key) if table else (key,))
        lines.setdefault(table, []).append(f"{key} = {_toml_value(value)}")
    op = rng.randrange(3)
    table, key = rng.choice(flat) if flat else ("", "backend")
    entries = lines.setdefault(table, [])
    if op == 0 and entries:
        entries[:] = [e for e in entries if not e.startswith(f"{key} =")]
        what = f"delete {table}.{key}"
    elif op == 1:
        value = rng.choice(TOML_VALUES)
        entries[:] = [e for e in entries if not e.startswith(f"{key} =")] + [f"{key} = {value}"]
        what = f"{table}.{key} = {value}"
    else:
        extra = rng.choice(["weigth_bits", "speed", "name", "backend", "resources"])
        entries.append(f"{extra} = {rng.choice(TOML_VALUES)}")
        what = f"add {table}.{extra}"
    text = "\n".join(lines.pop("", []))
    for name, entries in lines.items():
        text += f"\n[{name}]\n" + "\n".join(entries)
    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        pass  # a duplicate key: still a fine mutation (the loader must refuse it cleanly)
    path.write_text(text + "\n")
    return what


def _toml_leaves(data: dict, prefix: str = "") -> list[tuple[str, str]]:
    leaves = []
    for key, value in data.items():
        if isinstance(value, dict):
            leaves += _toml_leaves(value, f"{prefix}.{key}" if prefix else key)
        else:
            leaves.append((prefix, key))
    return leaves


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    return repr(value)
