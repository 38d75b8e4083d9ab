"""Metrics: the maths, the feature extractors, and the registered evaluations."""
