"""Worlds embedded in the package: the default world and named scenarios."""
