"""Benchmarks (measured by command, never by a timed test)."""
