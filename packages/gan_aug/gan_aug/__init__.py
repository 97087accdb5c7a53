"""Class- and domain-conditional GAN augmentation for expression recognition."""

__version__ = "0.1.0"
