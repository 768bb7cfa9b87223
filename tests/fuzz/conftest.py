"""Fuzz fixtures (a small valid checkpoint and its compiled directory, built once) and the outcome summary.

`make fuzz` sets SCADEPLOY_FUZZ=full for the full set; otherwise a fast subset runs with the suite.
Each case records its outcome in the test report, so the counts survive pytest-xdist workers.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import torch
from fuzz.harness import FULL

from scadeploy.frontends.checkpoint import Checkpoint, save_checkpoint
from scadeploy.frontends.masks import apply_masks, random_masks
from scadeploy.models import build_model, randomize_batchnorm

BASE_KWARGS = {"neuron": "if", "widths": [4, 8, 8], "num_classes": 10, "in_channels": 1, "input_size": 8}


@pytest.fixture(scope="session")
def base(tmp_path_factory) -> dict:
    """A valid small digits checkpoint (its path, raw dict and bytes) and its compile output."""
    from scadeploy.compiler import compile_checkpoint

    root = tmp_path_factory.mktemp("fuzz-base")
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model = randomize_batchnorm(build_model("digits", **BASE_KWARGS), generator).eval()
    masks = random_masks(model, 0.5, generator)
    apply_masks(model, masks)
    ckpt = Checkpoint({"name": "digits", "kwargs": dict(BASE_KWARGS)}, model.state_dict(), masks, 2, (1, 8, 8), 10,
                      {"kind": "if", "v_threshold": 1.0, "v_reset": 0.0}, {"dataset": "digits", "method": "sca"})
    path = save_checkpoint(ckpt, root / "base.pt")
    compile_checkpoint(path, root / "compiled", ("onnx-cpu", "loihi2-sim"))
    return {"path": path, "raw": torch.load(path, weights_only=True), "bytes": path.read_bytes(),
            "compiled": root / "compiled"}


@pytest.fixture(scope="session")
def partial(base: dict, tmp_path_factory) -> Path:
    """A compiled directory where one target refused: soft reset compiles for ONNX, Lava refuses it."""
    from scadeploy.compiler import compile_checkpoint

    raw = dict(base["raw"])
    raw["arch"] = {"name": "digits", "kwargs": dict(BASE_KWARGS, v_reset=None)}
    root = tmp_path_factory.mktemp("fuzz-partial")
    torch.save(raw, root / "soft.pt")
    _, manifest = compile_checkpoint(root / "soft.pt", root / "compiled", ("onnx-cpu", "loihi2-sim"))
    assert set(manifest.refused) == {"loihi2-sim"}
    return root / "compiled"


_OUTCOMES: Counter = Counter()
_SLOWEST: list[float] = [0.0]


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when != "call":
        return
    for name, value in report.user_properties:
        if name == "fuzz":
            case = json.loads(value)
            _OUTCOMES[(case["kind"], case["outcome"])] += 1
            _SLOWEST[0] = max(_SLOWEST[0], case["seconds"])


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    if not _OUTCOMES:
        return
    kinds = sorted({k for k, _ in _OUTCOMES})
    summary = {"mode": "full" if FULL else "fast",
               "per_input": {k: {o: _OUTCOMES[(k, o)] for o in ("ok", "clean", "failure")} for k in kinds},
               "total": {o: sum(n for (_, oo), n in _OUTCOMES.items() if oo == o) for o in ("ok", "clean", "failure")},
               "slowest_case_seconds": _SLOWEST[0]}
    path = Path(config.cache.mkdir("scadeploy")) / "fuzz-summary.json"
    path.write_text(json.dumps(summary, indent=2) + "\n")
    terminalreporter.write_sep("-", "fuzz outcomes")
    for kind in kinds:
        counts = summary["per_input"][kind]
        terminalreporter.write_line(f"{kind:24} " + "  ".join(f"{o} {n}" for o, n in counts.items()))
    terminalreporter.write_line(f"{'total':24} " + "  ".join(f"{o} {n}" for o, n in summary["total"].items())
                                + f"  (slowest case {_SLOWEST[0]:.1f} s; {path})")
