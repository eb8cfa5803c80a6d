"""Tooling around the product: the sample-data generator, the benchmark, the demo."""
