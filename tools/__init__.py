"""Generators, benchmarks and scripts of the project: run from the repository root as ``python -m tools.X``.

Not shipped in the wheel (only ``tap_comagic`` is); tests import the generators to compare the committed files.
"""
