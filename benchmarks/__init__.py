"""Benchmarks of emg-pipeline: scripts that print Markdown tables (see README.md)."""
