"""Benchmark corpora for reachsolve (see benchmarks/README.md)."""
