"""Landmarks -> model inputs: aspect ratio, point selection, normalization, augmentation, shards.

`features` defines the feature layout (the one place it is written down) with code that runs on
numpy and inside the exported TFLite graph; `aspect` estimates a corpus' y scale, which
`features.featurize` applies first. Submodules are imported explicitly (`from signpipe.landmarks
import features`) so that importing the package does not pull in jax.
"""
