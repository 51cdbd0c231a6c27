"""Benchmark scripts: each prints figures; none of them is a test."""
