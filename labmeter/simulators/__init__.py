"""Simulated devices and labs with known ground truth, for the demo, tests and benchmarks."""
