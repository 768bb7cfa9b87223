"""Every numeric tolerance the tests use, in one place: the package's own (`ir/agreement.py`) and the tests'."""

from scadeploy.ir.agreement import TOLERANCES

STRIP_LOGIT_ATOL = 1e-5  # stripped vs masked logits (float32 runs)
EXACT_F64_ATOL = TOLERANCES.exact  # graphs that must agree exactly, compared in float64
ONNX_LOGIT_ATOL = TOLERANCES.runtime  # ONNX Runtime vs torch reference
