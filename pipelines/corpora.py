"""The head of both DAGs: the corpora a run trains and is judged on, fingerprinted and validated.

    corpus ─ fingerprint ─ validate ─┬─ (given no evaluation corpus) hold out participants
                                     │      -> training corpus, evaluation corpus (their signers)
    evaluation corpus ─ fingerprint ─┴─ (given one) validate; check it shares no signers

Two forms, chosen when the pipeline is compiled (`hold_out`):
- with an evaluation corpus (`eval_corpus_uri`): it is fingerprinted and validated like the
  training corpus, and `check_held_out` fails the run when the two share participants, unless
  `allow_shared_participants` (then the gate's report opens with a warning);
- without one: `hold_out_participants` sets about `holdout_fraction` of the corpus' sequences,
  whole participants, aside to score on (`signpipe.data.holdout`).

Fingerprints (`components.corpus.fingerprint_corpus`, never cached) come in two strengths: every
step that reads a corpus takes its `cache_key` (the fingerprint, plus the cache period when runs
age out after `cache_max_age_days`), so new data at the same address, or a cached output about to
be deleted, is never a cache hit; the lineage (the bundle's metadata, the evaluation, the
registry) records the plain `fingerprint`, the data's identity across periods.

The pipeline functions declare every parameter of both forms; `for_form` hides the form's unused
ones from kfp, so a compiled spec asks only for what its DAG reads.
"""

import functools
import inspect
from collections.abc import Callable
from typing import Any, NamedTuple

from kfp import dsl
from kfp.dsl import Dataset

from components.corpus import check_held_out, fingerprint_corpus, hold_out_participants
from components.validate import validate

EVAL_FORM_PARAMETERS = ("eval_corpus_uri", "allow_shared_participants")
HOLDOUT_SEED = 1
"""Which participants the hold-out form sets aside by default (the seed local runs use too)."""
HOLD_OUT_FORM_PARAMETERS = ("holdout_fraction", "holdout_seed")


def for_form(hold_out: bool) -> Callable[[Callable], Callable]:
    """Decorator (under `@dsl.pipeline`): the pipeline function with the parameters of the other
    form left out of its signature (kfp reads the signature, then passes those it lists by
    position; they are handed on by name, the others keep their Python defaults). With an
    evaluation corpus, `eval_corpus_uri` is required."""

    def decorate(function: Callable) -> Callable:
        signature = inspect.signature(function)
        dropped = EVAL_FORM_PARAMETERS if hold_out else HOLD_OUT_FORM_PARAMETERS
        kept = [p if hold_out or p.name != "eval_corpus_uri" else p.replace(default=inspect.Parameter.empty)
                for p in signature.parameters.values() if p.name not in dropped]
        kept = [p for p in kept if p.default is inspect.Parameter.empty] + [p for p in kept if p.default is not inspect.Parameter.empty]
        names = [p.name for p in kept]

        @functools.wraps(function)
        def form(*args: Any, **kwargs: Any) -> Any:
            return function(**dict(zip(names, args)), **kwargs)

        form.__signature__ = signature.replace(parameters=kept)
        return form

    return decorate


class Corpora(NamedTuple):
    """What the rest of a DAG reads: the corpora and their fingerprints (pipeline channels)."""

    train: Any
    """The training corpus (a `Dataset`)."""
    train_key: Any
    """Its cache key: what every step reading it takes as `corpus_fingerprint`."""
    train_fingerprint: Any
    """Its fingerprint, for the lineage."""
    eval: Any
    eval_key: Any
    eval_fingerprint: Any
    shared_participants: Any
    """Participants in both (0 by construction when held out; the check step's count when given)."""
    ready: list
    """Tasks every training step waits for (the validations, the signer check)."""


def _fingerprinted(placement: Any, uri: Any, cache_max_age_days: Any, what: str) -> tuple[Any, Any]:
    imported = dsl.importer(artifact_uri=uri, artifact_class=Dataset, reimport=False).set_display_name(what)
    found = fingerprint_corpus(corpus=imported.output, cache_max_age_days=cache_max_age_days)
    # a cached fingerprint would name the data of an earlier run: the one step that must always run
    placement.place(found, "fingerprint-corpus").set_display_name(f"fingerprint {what}").set_caching_options(False)
    return imported, found


def corpora(placement: Any, kind: str, hold_out: bool, corpus_uri: Any, eval_corpus_uri: Any, cache_max_age_days: Any,
            holdout_fraction: Any, holdout_seed: Any, allow_shared_participants: Any) -> Corpora:
    """The head of a DAG in the form `hold_out` says (see the module docstring); `kind` is the
    corpus kind the pipeline trains on: a corpus of the other task stops the run at validation."""
    corpus, found = _fingerprinted(placement, corpus_uri, cache_max_age_days, "corpus")
    key, fingerprint = found.outputs["cache_key"], found.outputs["fingerprint"]
    validated = placement.place(validate(corpus=corpus.output, corpus_fingerprint=key, expected_kind=kind), "validate")
    if hold_out:
        split = placement.place(
            hold_out_participants(corpus=corpus.output, corpus_fingerprint=key, fraction=holdout_fraction, seed=holdout_seed),
            "hold-out-participants",
        ).after(validated)
        # the subsets are new artifacts whenever the corpus changed: their readers' keys follow
        return Corpora(split.outputs["train_corpus"], key, fingerprint, split.outputs["eval_corpus"], key, fingerprint,
                       0, [split])
    eval_corpus, eval_found = _fingerprinted(placement, eval_corpus_uri, cache_max_age_days, "evaluation corpus")
    eval_key = eval_found.outputs["cache_key"]
    eval_validated = placement.place(validate(corpus=eval_corpus.output, corpus_fingerprint=eval_key, expected_kind=kind),
                                     "validate")
    eval_validated.set_display_name("validate evaluation corpus")
    checked = placement.place(
        check_held_out(corpus=corpus.output, eval_corpus=eval_corpus.output, corpus_fingerprint=key,
                       eval_corpus_fingerprint=eval_key, allow_shared_participants=allow_shared_participants),
        "check-held-out",
    ).set_display_name("check held-out signers")
    checked.after(validated).after(eval_validated)
    return Corpora(corpus.output, key, fingerprint, eval_corpus.output, eval_key, eval_found.outputs["fingerprint"],
                   checked.outputs["Output"], [validated, eval_validated, checked])
