"""Models: the seed's conv-stem + RoPE transformer encoder (Flax NNX), its heads, named sizes.

`build_ctc_model(model_config("small"), rngs=nnx.Rngs(params=0, dropout=1))` is the usual entry.
"""

from signpipe.fingerspelling.model.encoder import Encoder, EncoderLayer, apply_rotary, frame_mask, rotary_angles
from signpipe.fingerspelling.model.heads import CTCHead, CTCModel, KDHead, build_ctc_model
from signpipe.fingerspelling.model.sizes import SIZES, ModelConfig, count_params, fp16_megabytes, model_config

__all__ = [
    "SIZES",
    "CTCHead",
    "CTCModel",
    "Encoder",
    "EncoderLayer",
    "KDHead",
    "ModelConfig",
    "apply_rotary",
    "build_ctc_model",
    "count_params",
    "fp16_megabytes",
    "frame_mask",
    "model_config",
    "rotary_angles",
]
