"""Micro-benchmarks (CPU latency of the frozen towers and the policy)."""
