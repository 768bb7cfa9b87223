"""The README's Python example runs as written and reports an exact strip."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_compile_own_model_example(tmp_path) -> None:
    out = tmp_path / "own"
    result = subprocess.run([sys.executable, str(EXAMPLES / "compile_own_model.py"), str(out)], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "stripped == masked on 8 inputs: True" in result.stdout
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["params"]["after"] < manifest["params"]["before"]
    assert (out / "model.onnx").is_file() and (out / "model.step.onnx").is_file()
    # the directory is self-contained: its inputs came from Python and were kept in it
    assert manifest["data"]["kind"] == "compiled" and (out / "inputs.npz").is_file()
    from support import invoke

    bench = invoke("benchmark", str(out), "-b", "2", "--warmup", "0", "--repeats", "1", "--threads", "1",
                   "-r", "onnx:stripped", "-r", "spikingjelly:masked", "--json")
    assert bench.exit_code == 0, bench.output
    assert max(json.loads(bench.stdout)["agreement"].values()) <= 1e-4
