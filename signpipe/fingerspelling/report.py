"""The fingerspelling evaluation page: where a model goes wrong, from its predictions on unseen signers.

The score by phrase kind (`phrase_kind`) and by phrase length (`length_bucket`), the best and worst
predictions beside their true phrases, the most confused characters (`character_confusions`, from
a Levenshtein alignment of each truth with its prediction), the share of empty outputs and a
histogram of the latency per sequence. Self-contained HTML in the style of `signpipe.reports`, so
it opens from a run folder in any browser and inline on the Vertex AI run page.
"""

from __future__ import annotations

import html
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any


from signpipe.reports import _page, evaluation_facts, histogram_svg, key_value_table

PHONE = "phone number"
WEB = "web address"
ADDRESS = "street address"
OTHER = "name/other"
PHRASE_KINDS = (PHONE, WEB, ADDRESS, OTHER)

_PHONE_CHARACTERS = re.compile(r"^[0-9+\-(). ]+$")
_MIN_PHONE_DIGITS = 7
_DOMAIN = re.compile(r"[a-z0-9-]\.[a-z]{2,}(?:[/:?#~]|$)")
_STREET_WORDS = frozenset({
    "street", "st", "avenue", "ave", "av", "boulevard", "blvd", "road", "rd", "drive", "dr", "lane", "ln", "way",
    "court", "ct", "place", "pl", "terrace", "circle", "cir", "highway", "hwy", "parkway", "pkwy", "square", "sq",
    "trail", "trl", "route", "rte", "suite", "apt", "unit",
})
_HOUSE_NUMBER = re.compile(r"^\d+[a-z]?\s+\S")


def phrase_kind(phrase: str) -> str:
    """The kind of a true fingerspelling phrase, by the first rule that applies (case ignored):

    1. phone number: only digits, spaces and `+ - ( ) .`, with at least 7 digits
       ("+39 66 5063 4982", "1-800-793-3362");
    2. web address: no spaces inside and either an `@` (e-mail), a `www.`, `http`, a `/`, or a
       dot followed by two or more letters at the end or before `/ : ? # ~`
       ("jobswalker.net", "kim1@hazel.info", "patel.net/travel?id=626");
    3. street address: a house number followed by a word ("4514 hill boulevard"), or any word
       that names a street type (street, ave, blvd, road, drive, lane, way, suite, ...);
    4. name/other: everything else (names, bare numbers, words).
    """
    text = phrase.strip().lower()
    if _PHONE_CHARACTERS.match(text) and sum(ch.isdigit() for ch in text) >= _MIN_PHONE_DIGITS:
        return PHONE
    if text and " " not in text and ("@" in text or "www." in text or "http" in text or "/" in text
                                     or _DOMAIN.search(text)):
        return WEB
    words = re.findall(r"[a-z]+", text)
    if _HOUSE_NUMBER.match(text) or any(word in _STREET_WORDS for word in words):
        return ADDRESS
    return OTHER


LENGTH_BUCKETS = ((1, 10), (11, 15), (16, 20), (21, 25), (26, None))
"""Phrase lengths in characters, each bucket inclusive; the competition's longest phrase is 31."""


def length_bucket(n_characters: int) -> str:
    """The `LENGTH_BUCKETS` label ("11-15", "26+") holding a phrase of `n_characters`."""
    for low, high in LENGTH_BUCKETS:
        if n_characters >= low and (high is None or n_characters <= high):
            return f"{low}+" if high is None else f"{low}-{high}"
    return "0"


def sequence_score(truth: str, prediction: str) -> float:
    """One phrase's normalized Levenshtein, (len - distance) / len: 1 when exact, 0 for an empty
    output, negative when the prediction adds more errors than the phrase has characters."""
    import Levenshtein

    if not truth:
        return 1.0 if not prediction else -float(len(prediction))
    return (len(truth) - Levenshtein.distance(truth, prediction)) / len(truth)


@dataclass(frozen=True)
class Confusion:
    kind: str  # "substitution", "deletion" (a true character missing), "insertion" (an extra one)
    truth: str
    predicted: str
    count: int


def character_confusions(pairs: Iterable[tuple[str, str]]) -> list[Confusion]:
    """Counted character edits of every (truth, prediction) pair by a minimal Levenshtein
    alignment: a substitution of a true character by another, a deletion of a true character, an
    insertion of a character the truth does not have. Most frequent first (ties by kind, then
    characters)."""
    import Levenshtein

    counts: Counter[tuple[str, str, str]] = Counter()
    for truth, prediction in pairs:
        for operation, at_truth, at_prediction in Levenshtein.editops(truth, prediction):
            if operation == "replace":
                counts["substitution", truth[at_truth], prediction[at_prediction]] += 1
            elif operation == "delete":
                counts["deletion", truth[at_truth], ""] += 1
            elif operation == "insert":
                counts["insertion", "", prediction[at_prediction]] += 1
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [Confusion(kind, truth, predicted, count) for (kind, truth, predicted), count in ranked]


def _score_rows(groups: Mapping[str, list[tuple[str, str]]], order: Sequence[str]) -> str:
    from signpipe.metrics import levenshtein_totals

    rows = []
    for name in order:
        pairs = groups.get(name)
        if not pairs:
            continue
        totals = levenshtein_totals([t for t, _ in pairs], [p for _, p in pairs])
        rows.append(f"<tr><td>{html.escape(name)}</td><td>{len(pairs)}</td><td>{totals.n_characters}</td>"
                    f"<td>{totals.distance}</td><td>{totals.score:.4f}</td></tr>")
    return ("<table><tr><th></th><th>sequences</th><th>characters</th><th>edit distance</th><th>score</th></tr>"
            + "".join(rows) + "</table>")


def _shown(character: str) -> str:
    return {" ": "␣ (space)", "": "-"}.get(character, character)


EXAMPLES = 10
CONFUSIONS = 25


def fingerspelling_evaluation_page(evaluation: Mapping[str, Any], rows: Sequence[tuple[int, str, str]],
                                   latencies_ms: Sequence[float] | None = None,
                                   title: str = "Fingerspelling: evaluation") -> str:
    """The page of one fingerspelling evaluation: `evaluation` is `EvaluationResult.to_dict()`,
    `rows` its (sequence_id, truth, prediction) in corpus order, `latencies_ms` the signature
    call's time per sequence in the same order."""
    n = len(rows)
    empty = sum(1 for _, _, p in rows if not p)
    headline = {
        "score": f"{evaluation['score']:.4f} ({evaluation.get('metric', '')})",
        "sequences": n,
        "characters": evaluation.get("n_characters", sum(len(t) for _, t, _ in rows)),
        "empty outputs": f"{empty} of {n} ({empty / n:.1%})" if n else "-",
        **evaluation_facts(evaluation),
    }
    body = ["<h2>Result</h2>" + key_value_table(headline)]

    by_kind: dict[str, list[tuple[str, str]]] = {}
    by_length: dict[str, list[tuple[str, str]]] = {}
    for _, truth, prediction in rows:
        by_kind.setdefault(phrase_kind(truth), []).append((truth, prediction))
        by_length.setdefault(length_bucket(len(truth)), []).append((truth, prediction))
    body.append("<h2>Score by phrase kind</h2>" + _score_rows(by_kind, PHRASE_KINDS)
                + "<p>Kinds by rule (<code>signpipe.fingerspelling.report.phrase_kind</code>): phone numbers are digits with "
                  "<code>+ - ( ) .</code>; web addresses have no spaces and an <code>@</code>, <code>/</code>, "
                  "<code>www.</code> or a domain ending; street addresses start with a house number or name a street "
                  "type; the rest are names and other phrases.</p>")
    length_order = [length_bucket(low) for low, _ in LENGTH_BUCKETS]
    body.append("<h2>Score by phrase length (characters)</h2>" + _score_rows(by_length, length_order))

    scored = [(sequence_score(t, p), sid, t, p) for sid, t, p in rows]
    best = sorted(scored, key=lambda item: (-item[0], item[1]))[:EXAMPLES]
    worst = sorted(scored, key=lambda item: (item[0], item[1]))[:EXAMPLES]
    for heading, chosen in (("Best predictions", best), ("Worst predictions", worst)):
        cells = "".join(
            f"<tr><td>{sid}</td><td><code>{html.escape(t)}</code></td><td><code>{html.escape(p) or '<i>(empty)</i>'}</code></td>"
            f"<td>{score:.3f}</td></tr>" for score, sid, t, p in chosen
        )
        body.append(f"<h2>{heading}</h2><table><tr><th>sequence</th><th>true phrase</th><th>prediction</th>"
                    f"<th>normalized Levenshtein</th></tr>{cells}</table>")

    confusions = character_confusions((t, p) for _, t, p in rows)
    totals = Counter(c.kind for c in confusions for _ in range(c.count))
    summary = ", ".join(f"{totals.get(kind, 0)} {kind}s" for kind in ("substitution", "deletion", "insertion"))
    confusion_rows = "".join(
        f"<tr><td>{c.kind}</td><td><code>{html.escape(_shown(c.truth))}</code></td>"
        f"<td><code>{html.escape(_shown(c.predicted))}</code></td><td>{c.count}</td></tr>"
        for c in confusions[:CONFUSIONS]
    )
    body.append(f"<h2>Most confused characters</h2><p>From a minimal Levenshtein alignment of each true phrase with its "
                f"prediction: {summary}.</p>"
                + (f"<table><tr><th>edit</th><th>true</th><th>predicted</th><th>count</th></tr>{confusion_rows}</table>"
                   if confusions else "<p>none: every prediction was exact</p>"))
    body.append("<h2>Latency per sequence</h2>" + histogram_svg(latencies_ms or [], "signature call per sequence", "ms"))
    return _page(title, body)


# --- the run's index page -------------------------------------------------------------------------
