"""Whole-pipeline studies built on the compiler: the demo and the SCA sweep with its plot."""
