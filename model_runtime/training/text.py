"""English sentences for the speech corpus, the ARPAbet phone set, CMU dictionary and number words.

Sentences come from templates over a hand-written vocabulary plus dictionary words picked to cover
rare phones and diphones; they include questions, exclamations, numbers, dates and digit strings.
"""

from __future__ import annotations

import functools
import os
import re

import numpy as np

ARPABET: tuple[str, ...] = (
    "AA", "AE", "AH", "AO", "AW", "AY", "B", "CH", "D", "DH", "EH", "ER", "EY", "F", "G", "HH",
    "IH", "IY", "JH", "K", "L", "M", "N", "NG", "OW", "OY", "P", "R", "S", "SH", "T", "TH", "UH",
    "UW", "V", "W", "Y", "Z", "ZH",
)
SIL = "SIL"

_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
         "fifteen sixteen seventeen eighteen nineteen").split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_ORD = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
        "nine": "ninth", "twelve": "twelfth"}


def number_words(n: int) -> str:
    """Cardinal number in words (0 .. 999 999 999), e.g. 1204 -> 'one thousand two hundred four'."""
    if n < 0:
        return "minus " + number_words(-n)
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    if n < 1000:
        return _ONES[n // 100] + " hundred" + ("" if n % 100 == 0 else " " + number_words(n % 100))
    for size, name in ((10**6, "million"), (1000, "thousand")):
        if n >= size:
            rest = n % size
            return number_words(n // size) + " " + name + ("" if rest == 0 else " " + number_words(rest))
    raise ValueError(n)


def ordinal_words(n: int) -> str:
    """Ordinal in words, e.g. 23 -> 'twenty third'."""
    w = number_words(n).split()
    last = w[-1]
    if last in _ORD:
        w[-1] = _ORD[last]
    elif last.endswith("y"):
        w[-1] = last[:-1] + "ieth"
    else:
        w[-1] = last + "th"
    return " ".join(w)


def year_words(y: int) -> str:
    """A year as read aloud: 1987 -> 'nineteen eighty seven', 2005 -> 'two thousand five'."""
    if 2000 <= y < 2010:
        return number_words(y)
    hi, lo = divmod(y, 100)
    if lo == 0:
        return number_words(hi) + " hundred"
    return number_words(hi) + " " + (("oh " + _ONES[lo]) if lo < 10 else number_words(lo))


def normalize_for_alignment(text: str) -> list[str]:
    """Lower-case words for the dictionary: digits spelled out, punctuation dropped."""
    text = text.lower().replace("&", " and ").replace("%", " percent ").replace("#", " pound ")
    text = text.replace("*", " star ").replace("@", " at ")
    out: list[str] = []
    for tok in re.findall(r"[a-z]+(?:'[a-z]+)*|\d+", text):
        if tok.isdigit():
            out.extend(number_words(int(tok)).split() if len(tok) <= 4 else
                       [_ONES[int(c)] for c in tok])
        else:
            out.append(tok)
    return out


@functools.lru_cache(maxsize=1)
def load_cmudict() -> dict[str, list[tuple[str, ...]]]:
    """The CMU pronouncing dictionary shipped in the pocketsphinx wheel (stress already absent)."""
    import pocketsphinx

    path = os.path.join(pocketsphinx.get_model_path(), "en-us", "cmudict-en-us.dict")
    d: dict[str, list[tuple[str, ...]]] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            parts = line.split()
            if len(parts) < 2:
                continue
            word = re.sub(r"\(\d+\)$", "", parts[0])
            d.setdefault(word, []).append(tuple(p.rstrip("012").upper() for p in parts[1:]))
    return d


# --- vocabulary -------------------------------------------------------------------------------
_NAMES = ("Anna Bob Carla David Emma Frank George Helen Isaac Julia Kevin Laura Michael Nora "
          "Oliver Paula Quentin Rachel Samuel Teresa Victor Wendy Zachary Yvonne Jim Beth").split()
_NOUNS = ("cat dog house garden window table chair phone message number letter morning evening "
          "teacher doctor pilot engine river mountain bridge village market jacket bottle kitchen "
          "office meeting problem question answer picture music voice sister brother mother father "
          "boat plane train ticket museum school beach summer winter treasure measure pleasure "
          "machine budget ocean puzzle weather feather thunder rhythm orange yellow purple "
          "vision garage judge church cheese shoe juice zebra oyster choice boy toy noise cloud "
          "mouth moon book foot wood wolf room queen quilt van vase fish thumb breath path").split()
_ADJS = ("big small quiet loud happy sad bright dark warm cold quick slow heavy lovely strange "
         "beautiful yellow smooth rough empty busy curious usual unusual huge tiny brave calm").split()
_VERBS = ("call find open close watch move bring check visit measure remember answer play build "
          "push pull catch fetch judge choose enjoy borrow view shove wash thank "
          "approve").split()
_VERBS_PAST = ("called found opened closed watched moved brought checked visited measured "
               "remembered answered played built pushed pulled caught fetched judged chose "
               "enjoyed borrowed viewed shoved washed thanked approved").split()
_PREPS = "near behind under above beside inside outside through across beyond with without".split()
_ADVS = "quickly slowly quietly really always never usually honestly maybe probably".split()
_MONTHS = ("January February March April May June July August September October November "
           "December").split()
_DAYS = "Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split()
_INTERJ = ("Oh no", "Wow", "Hey", "Well", "Yes", "No way", "Oops", "Great", "Look out",
           "Thank you", "Hello", "Goodbye", "Okay", "Hmm", "Really")


def _pick(rng: np.random.Generator, seq):
    return seq[int(rng.integers(len(seq)))]


@functools.lru_cache(maxsize=1)
def _coverage_words() -> tuple[str, ...]:
    """Plain dictionary words (3-10 letters) that contain rare phones or phone pairs."""
    rare = {"ZH", "OY", "TH", "DH", "UH", "CH", "JH", "NG", "AW", "SH", "Y", "W", "V", "G", "UW"}
    out = []
    for w, prons in load_cmudict().items():
        if not re.fullmatch(r"[a-z]{3,10}", w):
            continue
        if any(p in rare for p in prons[0]):
            out.append(w)
    return tuple(out[::7])  # thin out: keeps variety but stays readable


def _sentence(rng: np.random.Generator) -> str:
    n, a, v, vp, nm = (lambda: _pick(rng, _NOUNS)), (lambda: _pick(rng, _ADJS)), \
        (lambda: _pick(rng, _VERBS)), (lambda: _pick(rng, _VERBS_PAST)), (lambda: _pick(rng, _NAMES))
    num = int(rng.integers(0, 100)) if rng.uniform() < 0.6 else int(rng.integers(100, 100000))
    k = int(rng.integers(16))
    if k == 0:
        return f"The {a()} {n()} {vp()} the {n()} {_pick(rng, _PREPS)} the {n()}."
    if k == 1:
        return f"Did you {v()} the {a()} {n()}?"
    if k == 2:
        return f"{nm()}, please {v()} {num} {n()}s before {_pick(rng, _DAYS)}!"
    if k == 3:
        return f"Why would {nm()} {v()} my {n()}?"
    if k == 4:
        return f"What a {a()} {n()}!"
    if k == 5:
        digits = " ".join(str(int(d)) for d in rng.integers(0, 10, size=int(rng.integers(4, 11))))
        return f"Please call {digits}."
    if k == 6:
        return f"It costs {num} dollars and {int(rng.integers(1, 100))} cents."
    if k == 7:
        day = int(rng.integers(1, 29))
        return (f"We met on {_pick(rng, _MONTHS)} {ordinal_words(day)}, "
                f"{year_words(int(rng.integers(1900, 2030)))}.")
    if k == 8:
        return f"{_pick(rng, _INTERJ)}!"
    if k == 9:
        return f"{nm()} {_pick(rng, _ADVS)} {vp()} a {a()} {n()}."
    if k == 10:
        return f"Is the {n()} {_pick(rng, _PREPS)} the {n()}, or is it {_pick(rng, _PREPS)} the {n()}?"
    if k == 11:
        return f"You have {num} new messages."
    if k == 12:
        words = [_pick(rng, _coverage_words()) for _ in range(int(rng.integers(3, 8)))]
        return " ".join(words).capitalize() + "."
    if k == 13:
        return f"How many {n()}s did {nm()} {v()} on {_pick(rng, _DAYS)}?"
    if k == 14:
        return f"I {_pick(rng, _ADVS)} {v()} the {n()} with my {a()} {n()}."
    return f"{_pick(rng, _INTERJ)}, the {n()} is {_pick(rng, _ADVS)} {a()}!"


def generate_utterance(rng: np.random.Generator, max_sentences: int = 5) -> str:
    """One utterance of 1 to `max_sentences` sentences (roughly 1 to 20 s of speech)."""
    k = int(rng.choice(np.arange(1, max_sentences + 1), p=_len_probs(max_sentences)))
    return " ".join(_sentence(rng) for _ in range(k))


def _len_probs(m: int) -> np.ndarray:
    p = 1.0 / np.arange(1, m + 1) ** 0.7
    return p / p.sum()


def phone_coverage(texts: list[str]) -> tuple[set[str], set[tuple[str, str]]]:
    """Phones and within-word diphones the texts cover according to the CMU dictionary."""
    d = load_cmudict()
    phones: set[str] = set()
    di: set[tuple[str, str]] = set()
    for t in texts:
        for w in normalize_for_alignment(t):
            if w in d:
                pr = d[w][0]
                phones.update(pr)
                di.update(zip(pr[:-1], pr[1:]))
    return phones, di
