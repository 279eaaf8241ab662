"""signpipe: sign-language recognition from MediaPipe landmarks, from corpus to TFLite.

The library never imports kfp; pipelines and components wrap it.
"""

__version__ = "0.1.0"
