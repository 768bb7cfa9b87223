"""benchmarks/sca_beyond.py without training: how each method is configured, and which recorded runs are still valid."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def sca_beyond():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import sca_beyond

        yield sca_beyond
    finally:
        sys.path.remove(str(BENCHMARKS))


@pytest.fixture
def study(sca_beyond, tmp_path):
    study = sca_beyond.Study(tmp_path / "report.json", tmp_path / "ckpt")
    study.ckpt_dir.mkdir()
    study.checkpoint_path(study.key("digits", "dense", None, 0)).write_bytes(b"")  # the teacher exists
    return study


def test_each_method_is_configured_as_documented(sca_beyond, study):
    best = study.config("digits", "sca-best", 0.2, 0)
    assert best.finetune == sca_beyond.SETUPS["digits"]["finetune"] and best.teacher is not None
    assert best.bn_recalibrate == sca_beyond.BEST["bn_recalibrate"] > 0 and best.regrow_init == "reinit"
    paper = study.config("digits", "paper", 0.2, 0)
    assert paper.ranking == "paper" and paper.finetune == 0 and paper.bn_recalibrate == 0 and paper.teacher is None
    assert study.config("digits", "no-recal", 0.2, 0).bn_recalibrate == 0
    assert study.config("digits", "prune-only", 0.2, 0).prune_only
    assert study.config("digits", "scratch", 0.2, 0) is None  # waits for sca-best's widths
    study.runs[study.key("digits", "sca-best", 0.2, 0)] = {"kept": {"a": 3, "b": 5, "c": 7}}
    scratch = study.config("digits", "scratch", 0.2, 0)
    assert scratch.model_kwargs == {"widths": [3, 5, 7]} and scratch.keep_ratio is None
    assert scratch.bn_recalibrate == best.bn_recalibrate and scratch.teacher is None
    assert scratch.resolved().total_epochs == best.resolved().total_epochs  # the same total epochs
    assert study.config("digits", "scratch-kd", 0.2, 0).teacher == best.teacher


def test_a_recorded_run_is_reused_only_while_its_config_is_the_one_the_study_would_run(study):
    key = study.key("digits", "paper", 0.2, 0)
    config = study.config("digits", "paper", 0.2, 0)
    assert not study.is_done(key, config)
    study.runs[key] = {"config": config.to_dict()}
    assert study.is_done(key, config)
    older = config.to_dict()
    del older["bn_recalibrate"]  # a run recorded before the field existed: read as its default
    study.runs[key] = {"config": older}
    assert study.is_done(key, config)
    best_key = study.key("digits", "sca-best", 0.2, 0)
    study.runs[best_key] = {"config": older | {"ranking": "layer_mean"}}
    assert not study.is_done(best_key, study.config("digits", "sca-best", 0.2, 0))  # the recipe changed: rerun
