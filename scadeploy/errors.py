"""One error hierarchy: every user-facing failure is a ScadeployError with one clear line.

The CLI prints `error: <message>` (and `hint: <hint>` when there is one) and exits with the
class's exit code; a traceback is shown only with `-v`.
"""

from __future__ import annotations


class ScadeployError(Exception):
    """A failure the user can act on. `hint` says what to do about it."""

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} ({self.hint})"


class CheckpointError(ScadeployError):
    """A checkpoint file is missing, corrupt, foreign, unsafe or inconsistent."""


class MaskError(ScadeployError):
    """A channel mask does not fit the layer it names."""


class UnsupportedError(ScadeployError):
    """A model uses a layer, function or setting a frontend or backend cannot express."""


class ShapeError(ScadeployError):
    """An input shape does not fit the model it is given to (too small, or the wrong channels)."""


class TargetError(ScadeployError):
    """A deployment target is unknown, malformed, or the model does not fit it."""


class OutputExistsError(ScadeployError):
    """An output directory exists and `--force` was not given."""


class DataError(ScadeployError):
    """A dataset is missing or not in the expected on-disk format."""


class GraphError(ScadeployError):
    """The IR is malformed: a bug in a pass or frontend, not in the user's input."""

    exit_code = 3


class ArtifactError(ScadeployError):
    """A file of a compiled directory is missing, corrupt, tampered with or of another format version."""


class ModelError(ScadeployError):
    """A user's model factory cannot be imported, called, or returns something that is not a model."""
