"""Benchmarks: `python -m benchmarks.input_pipeline`, `python -m benchmarks.speed`."""
