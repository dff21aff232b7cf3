"""Benchmarks (``make bench``): measured, never asserted in tests. See BENCHMARKS.md."""
