"""Benchmarks and fault-injection runs (``python benchmarks/faults.py``)."""
