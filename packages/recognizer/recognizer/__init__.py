"""The audio-visual expression recognizer (MCNN + RHCNN + GCSA + proportional fusion)."""

__version__ = "0.1.0"
