"""Every numeric tolerance the tests use, in one place."""

STRIP_LOGIT_ATOL = 1e-5  # stripped vs masked logits (float32 runs)
EXACT_F64_ATOL = 1e-9  # graphs that must agree exactly, compared in float64
ONNX_LOGIT_ATOL = 1e-4  # ONNX Runtime vs torch reference
