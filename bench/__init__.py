"""Benchmarks: `make bench` runs them all; each prints measured figures beside a
baseline measured in the same run, and the issue's target."""
