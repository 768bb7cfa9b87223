"""The ONNX backend: IR -> ONNX (sequence and step layouts), channel alignment, ONNX Runtime sessions.

Modules: `export` (the target: check, build, write, parity), `sequence` and `step` (the two
layouts), `ops` (node builders shared by both), `align` (channel padding for speed), `runtime`
(ONNX Runtime sessions and runners).
"""
