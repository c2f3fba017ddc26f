"""Benchmarks: speed is measured here, never in timed tests. Results go to bench/results/*.json and BENCHMARKS.md."""
