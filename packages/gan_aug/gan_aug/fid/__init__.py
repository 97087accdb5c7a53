"""FID, per-class FID (intra-FID), KID and the real-vs-real floor with pytorch-fid's InceptionV3.

By role: ``weights`` (the offline InceptionV3 weights), ``sources`` (what images a manifest, cache or folder
lists, and how they are read), ``features`` (pool3 features, cached on disk), ``metrics`` (Fréchet distance,
KID), ``report`` (FID/KID/per-class FID of two sources at equal N), ``floor`` (the same between two halves
of the real data), ``hook`` (the trainer's FID every N steps), ``command`` (``gan-aug fid``).
"""
