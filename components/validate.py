"""Validate: check the corpus before hours are spent on it, and describe what is in it."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Markdown, Metrics, Output

from components import LOCAL_IMAGE


@dsl.component(base_image=LOCAL_IMAGE, install_kfp_package=False)
def validate(corpus: Input[Dataset], summary: Output[Metrics], report: Output[Markdown], corpus_fingerprint: str = "",
             expected_kind: str = "") -> int:
    """Every check of `signpipe.data.validate` on the corpus; fails the run (listing every problem)
    when the corpus cannot be used, else records its size per part. Returns the number of
    sequences, so later steps depend on a validated corpus. `corpus_fingerprint` (from
    `fingerprint_corpus`) makes changed data at the same address a new input, never a cache hit.
    `expected_kind` ("fingerspelling" or "isolated-signs", the pipeline's task): a corpus of the
    other task stops the run here, with that reason."""
    from pathlib import Path

    from signpipe.data.validate import validate_corpus
    from signpipe.errors import CorpusError, Problem
    from signpipe.reports import record_metrics, validation_markdown

    result = validate_corpus(corpus.path)
    if expected_kind and result.kind and result.kind != expected_kind:
        raise CorpusError(Problem(str(corpus.uri), f"expected a corpus of the {expected_kind} task for this pipeline, "
                                                   f"found one of the {result.kind} task (its train.csv has those columns)"))
    Path(report.path).write_text(validation_markdown(result.to_dict()), encoding="utf-8")
    if not result.ok:
        raise CorpusError(result.problems)
    values = result.to_dict()
    record_metrics(summary, values["summary"])
    summary.metadata["kind"] = values["kind"]
    summary.metadata["warnings"] = len(values["warnings"])
    summary.metadata["corpus_fingerprint"] = corpus_fingerprint
    return int(sum(part["sequences"] for part in values["summary"].values()))
