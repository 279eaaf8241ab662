"""CTC pseudo-alignment and temporal CutMix (the fingerspelling seed's middle stages).

- `viterbi`: `ctc_forced_align`, where each character of a known phrase sits in a sequence,
  from a trained CTC model's log-probabilities; flags sequences it cannot or can barely align.
- `artifact`: the alignments parquet (`write_alignments`, `read_alignments`).
- `cutmix`: `temporal_cutmix` and `CutMixBatches`, the training batches that use the alignments.
- `run`: `align_shards`, a checkpoint and a shard directory in, the artifact out
  (`signpipe align --workdir RUN --shards SHARDS --out DIR`).

`cutmix` and `run` are imported as modules of their own (`signpipe.fingerspelling.align.cutmix`,
`signpipe.fingerspelling.align.run`), not from here: they pull in jax and the training stages, which themselves
import this package, while the aligner and the artifact need only numpy and pyarrow.
"""

from signpipe.fingerspelling.align.artifact import (
    ALIGNMENTS_FILE,
    SUMMARY_FILE,
    AlignedSequence,
    AlignmentRecords,
    read_alignments,
    write_alignments,
)
from signpipe.fingerspelling.align.viterbi import (
    DEFAULT_MIN_CHARACTER_CONFIDENCE,
    DEFAULT_MIN_CONFIDENCE,
    BatchAlignment,
    SequenceAlignment,
    character_segments,
    ctc_forced_align,
)

__all__ = [
    "ALIGNMENTS_FILE",
    "DEFAULT_MIN_CHARACTER_CONFIDENCE",
    "DEFAULT_MIN_CONFIDENCE",
    "SUMMARY_FILE",
    "AlignedSequence",
    "AlignmentRecords",
    "BatchAlignment",
    "SequenceAlignment",
    "character_segments",
    "ctc_forced_align",
    "read_alignments",
    "write_alignments",
]
