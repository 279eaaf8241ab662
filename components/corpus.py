"""The corpora a run reads: their fingerprints, and the signers held out to judge the model on.

- `fingerprint_corpus` (never cached) names the data at a corpus address as it is now
  (`signpipe.data.fingerprint`); every step that reads the corpus takes its `cache_key` output, so
  a run on changed data at the same address recomputes from the first step that reads it, and
  one on unchanged data may reuse the cache.
- `hold_out_participants`: a run given one corpus writes it as a training corpus and a corpus of
  held-out signers (`signpipe.data.holdout.split_by_participant`), so the bundle is never scored
  on the signers it trained on.
- `check_held_out`: a run given an evaluation corpus refuses one sharing signers with the
  training corpus, unless told to allow it; the count goes to the gate, whose report flags it.
"""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Markdown, Output

from components import LOCAL_IMAGE


@dsl.component(base_image=LOCAL_IMAGE, install_kfp_package=False)
def fingerprint_corpus(corpus: Input[Dataset], cache_max_age_days: int, record: Output[Artifact]
                       ) -> NamedTuple("Outputs", [("fingerprint", str), ("cache_key", str)]):
    """The corpus' fingerprint (its content identity, recorded in the lineage) and the cache key
    the steps reading it take: the fingerprint, plus the cache period when cached outputs must
    not outlive `cache_max_age_days` (0: never expire). Lists a `gs://` corpus through the Cloud
    Storage API, a local one on disk. Must run with caching off (a cached fingerprint would name
    the data of an earlier run)."""
    import json
    import time
    from collections import namedtuple
    from pathlib import Path

    from signpipe.data.atomic import atomic_write_text
    from signpipe.data.fingerprint import cache_key as period_key
    from signpipe.data.fingerprint import corpus_fingerprint

    found = corpus_fingerprint(corpus.uri if corpus.uri.startswith("gs://") else corpus.path)
    key = period_key(found.fingerprint, cache_max_age_days, time.time())
    atomic_write_text(Path(record.path), json.dumps({**found.to_dict(), "cache_key": key}, indent=2) + "\n")
    record.metadata.update({**found.to_dict(), "cache_key": key})
    return namedtuple("Outputs", ["fingerprint", "cache_key"])(found.fingerprint, key)


@dsl.component(base_image=LOCAL_IMAGE, install_kfp_package=False)
def hold_out_participants(
    corpus: Input[Dataset],
    corpus_fingerprint: str,
    fraction: float,
    seed: int,
    train_corpus: Output[Dataset],
    eval_corpus: Output[Dataset],
    split: Output[Artifact],
) -> int:
    """About `fraction` of the corpus' sequences, whole participants, go to `eval_corpus` and
    never train; the rest to `train_corpus` (`signpipe.data.holdout.split_by_participant`).
    `split` records who went where; returns the number of held-out participants."""
    import json
    from pathlib import Path

    from signpipe.data.atomic import atomic_write_text
    from signpipe.data.holdout import split_by_participant

    # in place: the outputs are this task's fresh folders, on Vertex AI under the Cloud Storage mount
    made = split_by_participant(corpus.path, train_corpus.path, eval_corpus.path, fraction, seed=seed, in_place=True)
    values = {"source": corpus.uri, "corpus_fingerprint": corpus_fingerprint, "fraction": fraction, "seed": seed,
              **made.to_dict()}
    atomic_write_text(Path(split.path), json.dumps(values, indent=2) + "\n")
    split.metadata.update({"held_out_participants": list(made.held_out_participants),
                           "train_sequences": made.n_train_sequences, "held_out_sequences": made.n_held_out_sequences})
    for output, subset in ((train_corpus, "training"), (eval_corpus, "held-out participants")):
        output.metadata.update({"source": corpus.uri, "corpus_fingerprint": corpus_fingerprint, "subset": subset})
    return len(made.held_out_participants)


@dsl.component(base_image=LOCAL_IMAGE, install_kfp_package=False)
def check_held_out(
    corpus: Input[Dataset],
    eval_corpus: Input[Dataset],
    corpus_fingerprint: str,
    eval_corpus_fingerprint: str,
    allow_shared_participants: bool,
    report: Output[Markdown],
) -> int:
    """The participants the evaluation corpus shares with the training corpus: none, or the run
    fails here (a model scored on signers it trained on shows what it memorized), unless
    `allow_shared_participants`; returns their number, which the gate's report flags."""
    from pathlib import Path

    from signpipe.data.corpus import quote_items
    from signpipe.data.holdout import shared_participants
    from signpipe.errors import ConfigError

    shared = shared_participants(corpus.path, eval_corpus.path)
    listed = quote_items(shared, limit=20)
    lines = ["# Evaluation corpus against training corpus", "",
             f"- training corpus: `{corpus.uri}` (fingerprint `{corpus_fingerprint}`)",
             f"- evaluation corpus: `{eval_corpus.uri}` (fingerprint `{eval_corpus_fingerprint}`)",
             f"- participants in both: {len(shared)}" + (f" ({listed})" if shared else "")]
    if shared and allow_shared_participants:
        lines.append("- allowed by allow_shared_participants: the score includes signers the model trained on")
    Path(report.path).write_text("\n".join(lines) + "\n", encoding="utf-8")
    if shared and not allow_shared_participants:
        raise ConfigError(f"the evaluation corpus {eval_corpus.uri} shares {len(shared)} participant(s) with the training "
                          f"corpus {corpus.uri} ({listed}): a score on signers the model trained on shows what it "
                          "memorized. Pass an evaluation corpus of other signers, or none to hold participants out of "
                          "the training corpus (allow_shared_participants=true to score on them anyway, flagged)")
    return len(shared)
