"""Every test worker collects the same test ids: `make test` runs under pytest-xdist, which refuses to start when
two workers disagree (an id built from an object's address or from set order differs between processes)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _collected_ids(hash_seed: str) -> list[str]:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    result = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                             "-p", "no:randomly", "tests"], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return sorted(line for line in result.stdout.splitlines() if "::" in line)


def test_two_processes_collect_the_same_test_ids():
    first, second = _collected_ids("1"), _collected_ids("2")
    assert len(first) > 100
    differing = sorted(set(first) ^ set(second))
    assert not differing, f"test ids that differ between processes: {differing[:5]}"
