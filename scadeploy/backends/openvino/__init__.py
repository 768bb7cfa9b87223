"""OpenVINO backend: the sequence-layout ONNX model compiled by OpenVINO for the CPU (optional extra)."""
