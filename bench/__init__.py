"""Benchmarks of the real stream (see docs/BENCHMARKS.md). They report; they never assert."""
