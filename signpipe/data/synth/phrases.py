"""Phrases shaped like the fingerspelling corpus: addresses, phone numbers, URLs (REFERENCE.md 1).

Every phrase uses only characters of the competition's map and is 1 to `MAX_PHRASE_LENGTH` long.
The word lists are small and invented on purpose: a model should learn hand shapes, and a corpus
of a few thousand phrases still covers every character (the rarer punctuation comes from the
`_misc` templates, as in the real corpus where it is rare too).
"""

from __future__ import annotations

import numpy as np

from signpipe.data.schema import CHARACTER_MAP_FILE, packaged_map

MAX_PHRASE_LENGTH = 31

_NAMES = (
    "nolan", "hill", "kane", "maple", "oak", "cedar", "elm", "quincy", "lopez", "jackson", "fox",
    "baxter", "ruiz", "walker", "park", "zimmer", "vega", "knox", "jade", "willow", "brooks", "ortiz",
    "madison", "grove", "lake", "sunset", "river", "summit", "hazel", "dixon", "quinn", "yates",
    "juniper", "maxwell", "patel", "nguyen", "kim", "wolfe", "ivy", "lincoln", "franklin", "bishop",
)  # fmt: skip
_STREET_TYPES = (
    "street", "st", "drive", "dr", "avenue", "ave", "road", "rd", "lane", "ln", "court", "ct",
    "boulevard", "blvd", "way", "place", "pl", "circle", "terrace", "parkway", "highway", "trail",
)  # fmt: skip
_DIRECTIONS = ("n", "s", "e", "w", "north", "south", "east", "west", "ne", "sw")
_WORDS = (
    "shop", "news", "blog", "home", "photo", "travel", "music", "games", "books", "food", "tech",
    "jobs", "art", "maps", "quiz", "jazz", "yoga", "zoo", "box", "kids", "pets", "cloud", "data",
)  # fmt: skip
_TLDS = ("com", "org", "net", "edu", "gov", "io", "co", "us", "info", "biz", "tv")
_UNITS = ("apt", "unit", "ste", "suite", "#", "fl")


def _digits(rng: np.random.Generator, n: int) -> str:
    return "".join(str(d) for d in rng.integers(0, 10, size=n))


def _number(rng: np.random.Generator, low: int, high: int) -> str:
    return str(int(rng.integers(low, high)))


def _pick(rng: np.random.Generator, options: tuple[str, ...]) -> str:
    return options[int(rng.integers(0, len(options)))]


def _address(rng: np.random.Generator) -> str:
    parts = [_number(rng, 1, 100 if rng.random() < 0.3 else 20000)]
    if rng.random() < 0.3:
        parts.append(_pick(rng, _DIRECTIONS))
    parts += [_pick(rng, _NAMES), _pick(rng, _STREET_TYPES)]
    phrase = " ".join(parts)
    if rng.random() < 0.2:
        unit = _pick(rng, _UNITS)
        number = _number(rng, 1, 400) + (_pick(rng, ("a", "b", "c")) if rng.random() < 0.3 else "")
        phrase += f" {unit}{number}" if unit == "#" else f" {unit} {number}"
    return phrase


def _phone(rng: np.random.Generator) -> str:
    area, exchange, line = _digits(rng, 3), _digits(rng, 3), _digits(rng, 4)
    style = int(rng.integers(0, 6))
    if style == 0:
        return f"+1-{area}-{exchange}-{line}"
    if style == 1:
        return f"{area}-{exchange}-{line}"
    if style == 2:
        return f"({area}) {exchange}-{line}"
    if style == 3:
        return f"{area}.{exchange}.{line}"
    if style == 4:
        return f"+{_number(rng, 2, 99)} {_digits(rng, 2)} {_digits(rng, 4)} {_digits(rng, 4)}"
    return f"1-800-{exchange}-{line}"


def _url(rng: np.random.Generator) -> str:
    a, b, word, tld = _pick(rng, _NAMES), _pick(rng, _NAMES), _pick(rng, _WORDS), _pick(rng, _TLDS)
    style = int(rng.integers(0, 6))
    if style == 0:
        return f"www.{a}-{b}.{tld}/"
    if style == 1:
        return f"{word}{a}.{tld}"
    if style == 2:
        return f"https://{a}.{tld}/{word}"
    if style == 3:
        return f"{a}.{tld}/{word}?id={_number(rng, 1, 999)}"
    if style == 4:
        return f"www.{word}{_number(rng, 1, 99)}.{tld}/~{a}"
    return f"{word}.{a}.{tld}/{word}&p={_number(rng, 1, 9)}"


def _email(rng: np.random.Generator) -> str:
    a, b, word, tld = _pick(rng, _NAMES), _pick(rng, _NAMES), _pick(rng, _WORDS), _pick(rng, _TLDS)
    if rng.random() < 0.5:
        return f"{a}_{b}@{word}.{tld}"
    return f"{a}{_number(rng, 1, 99)}@{b}.{tld}"


def _misc(rng: np.random.Generator) -> str:
    word, other, n = _pick(rng, _WORDS), _pick(rng, _NAMES), _number(rng, 1, 100)
    templates = (
        f"{n}% off!", f"${n}.{_digits(rng, 2)}", f"{word} & {other}", f"*{n}#", f"{word}[{n}",
        f"{word}; {other}", f"{word}={n}", f"{_number(rng, 1, 13)}:{_digits(rng, 2)}", f"'{word}'",
        f"{word}?", f"({word})", f"{word},{other}", f"~{other}", f"{word}+{other}", f"#{n} {word}",
    )  # fmt: skip
    return _pick(rng, templates)


def _short(rng: np.random.Generator) -> str:
    if rng.random() < 0.5:
        return _number(rng, 0, 1000)
    return _pick(rng, _WORDS + _NAMES)[: int(rng.integers(1, 7))]


_KINDS = (_address, _phone, _url, _email, _misc, _short)
_KIND_WEIGHTS = np.array([0.36, 0.2, 0.24, 0.08, 0.07, 0.05])
_ALLOWED = frozenset(packaged_map(CHARACTER_MAP_FILE))


def random_phrase(rng: np.random.Generator) -> str:
    """One phrase of 1 to 31 map characters, drawn like the corpus mixes its kinds."""
    while True:
        kind = _KINDS[int(rng.choice(len(_KINDS), p=_KIND_WEIGHTS))]
        phrase = kind(rng)
        if 1 <= len(phrase) <= MAX_PHRASE_LENGTH:
            unknown = set(phrase) - _ALLOWED
            if unknown:  # a template bug, never a user's doing
                raise AssertionError(f"phrase {phrase!r} uses characters outside the map: {sorted(unknown)}")
            return phrase
