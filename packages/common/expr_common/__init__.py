"""Shared pieces: labels, config, runs, checkpoints, media, datasets and the procedural corpus."""

__version__ = "0.1.0"
