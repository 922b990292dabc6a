"""Shared engine: settings, run folders, training loop, metrics, checkpoints, tiled inference."""
