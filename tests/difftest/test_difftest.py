"""Random spiking networks through every backend (`make difftest` runs 1,000; the suite a seeded subset).

A case fails on a raw exception, a broken invariant or a disagreement beyond a backend's claim; the
failure message carries the seed and the shrunk minimal network, so `pytest -k 'seed-N'` replays it.
"""

from __future__ import annotations

import json
import os
import time

import pytest
from difftest.generator import random_case
from difftest.oracle import judge
from difftest.shrink import shrink

FULL = os.environ.get("SCADEPLOY_DIFFTEST") is not None
COUNT = int(os.environ.get("SCADEPLOY_DIFFTEST") or 12)
SECONDS = float(os.environ.get("SCADEPLOY_DIFFTEST_SECONDS", 3600))
LAVA_EVERY = 50  # under `make difftest`, one case in 50 also runs Lava's own simulator
_START = time.monotonic()


@pytest.mark.parametrize("seed", range(COUNT), ids=lambda s: f"seed-{s}")
def test_random_network_agrees_everywhere(request, seed):
    if time.monotonic() - _START > SECONDS:
        pytest.skip(f"over the {SECONDS:.0f} s budget of this run")
    case = random_case(seed)
    verdict = judge(case, lava_sim=FULL and seed % LAVA_EVERY == 0)
    request.node.user_properties.append(("difftest", json.dumps(verdict.outcomes)))
    if verdict.failed:
        failing = set(verdict.failures())
        minimal = shrink(case, lambda c: bool(failing & set(judge(c).failures())))
        pytest.fail(f"{case.describe()}\nfailures: {verdict.failures()}\nminimal: {minimal.describe()}\n"
                    f"minimal failures: {judge(minimal).failures()}")
