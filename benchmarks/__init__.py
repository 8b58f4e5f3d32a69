"""Benchmarks (ckkslab vs SEAL/HElayers in one process) and the long fuzz run: scripts, not tests."""
