"""Distillation: the blended loss at its bounds, the teacher's cached logits, teachers of another task refused."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from scadeploy.frontends.checkpoint import save_checkpoint
from scadeploy.sca import TrainConfig, train
from scadeploy.sca.config import ConfigError
from scadeploy.sca.distill import Teacher, distillation_loss

TINY = {"epochs": 1, "batch_size": 128, "model_kwargs": {"widths": [4, 8, 8]}}


@pytest.fixture(scope="module")
def teacher_path(tmp_path_factory):
    return save_checkpoint(train(TrainConfig(**TINY)).checkpoint, tmp_path_factory.mktemp("kd") / "dense.pt")


def test_weight_zero_is_cross_entropy_and_one_is_the_soft_term_only():
    torch.manual_seed(0)
    student, teacher, labels = torch.randn(8, 10), torch.randn(8, 10), torch.randint(0, 10, (8,))
    assert torch.allclose(distillation_loss(student, teacher, labels, 0.0, 4.0), F.cross_entropy(student, labels))
    assert distillation_loss(teacher, teacher, labels, 1.0, 4.0).abs() < 1e-6  # the student is the teacher
    soft = F.kl_div(F.log_softmax(student / 2, 1), F.softmax(teacher / 2, 1), reduction="batchmean")
    assert torch.allclose(distillation_loss(student, teacher, labels, 1.0, 2.0), 4 * soft)


def test_cached_logits_equal_logits_computed_per_batch(teacher_path):
    teacher = Teacher(teacher_path, "digits", (1, 8, 8), 10)
    images = torch.rand(300, 1, 8, 8)
    fresh = teacher.targets(images[[5, 17, 299]], torch.tensor([5, 17, 299]))
    teacher.cache(images)
    assert teacher.cached.shape == (300, 10)
    assert torch.equal(teacher.targets(images[[5, 17, 299]], torch.tensor([5, 17, 299])), fresh)


def test_teacher_of_another_task_is_refused(teacher_path):
    with pytest.raises(ConfigError, match="trained on digits"):
        Teacher(teacher_path, "mnist5k", (1, 28, 28), 10)
    with pytest.raises(ConfigError, match="same task"):
        Teacher(teacher_path, "digits", (1, 8, 8), 5)


def test_a_teacher_changes_the_run_and_its_weight_zero_does_not(teacher_path):
    base = TrainConfig(keep_ratio=0.5, **TINY)
    plain = train(base).history[-1].loss
    distilled = train(TrainConfig(**{**base.__dict__, "teacher": str(teacher_path)})).history[-1].loss
    labels_only = train(TrainConfig(**{**base.__dict__, "teacher": str(teacher_path), "kd_weight": 0.0}))
    assert distilled != plain and labels_only.history[-1].loss == pytest.approx(plain, rel=1e-6)
