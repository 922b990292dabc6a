"""Experiments reproducing the multiblock report's figures: one script each, small (CPU) and full presets."""
