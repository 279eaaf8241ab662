"""Align: CTC pseudo-alignment of every training phrase on the teacher (`signpipe.fingerspelling.align.run`)."""

from kfp import dsl
from kfp.dsl import HTML, Dataset, Input, Metrics, Model, Output

from components import LOCAL_IMAGE


@dsl.component(base_image=LOCAL_IMAGE, install_kfp_package=False)
def align(features: Input[Dataset], teacher: Input[Model], min_confidence: float, min_character_confidence: float,
          alignments: Output[Dataset], metrics: Output[Metrics], report: Output[HTML], examples: int = 12):
    """Where each character of each training phrase sits, by the teacher; sequences below the
    confidences are flagged (CutMix leaves them out) and counted, `report` shows `examples`."""
    from components import html_report
    from signpipe.fingerspelling.align.artifact import read_alignments
    from signpipe.fingerspelling.align.run import align_shards
    from signpipe.reports import alignment_examples, alignment_report, record_metrics

    summary = align_shards(teacher.path, features.path, alignments.path, min_confidence=min_confidence,
                           min_character_confidence=min_character_confidence)
    record_metrics(metrics, summary["splits"])
    records = read_alignments(alignments.path)
    html_report(report, alignment_report(alignment_examples(records, examples), "pseudo-alignment", summary["splits"]))
    alignments.metadata.update({"sequences": summary["sequences"], "splits": summary["splits"],
                                "teacher_step": summary["metadata"]["model_step"]})
