"""Benchmark adapters implementing harness.task.Task."""
