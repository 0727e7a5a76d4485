"""Helpers shipped for tests, benchmarks and plugin authors: sample images and strategies."""
