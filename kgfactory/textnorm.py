"""Name normalisation shared by extraction (to merge entities) and retrieval (to find them in a question)."""
from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

_LEADING = re.compile(r"^(the|a|an|this|that|these|those|his|her|its|their|our|my|your)\s+", re.IGNORECASE)
_PUNCT = re.compile(r"[^\w\s&+.-]")
_SPACED_HYPHEN = re.compile(r"(?<=\w)\s*-\s*(?=\w)")  # tokenised text: "Person - centered", "Poulton- le"
_EDGE_JUNK = "\"'`“”‘’«»/\\|$#*~^_=<>[]{},;:!?&-–— \t"  # and "+" or "(" leading, unbalanced parentheses


def normalise(name: str) -> str:
    """Key that merges spelling variants: NFKC, lower case, no leading article, no possessive, no stray
    punctuation, spaced hyphens joined, single spaces."""
    s = unicodedata.normalize("NFKC", name).strip()
    s = re.sub(r"['’]s$", "", s)
    s = _PUNCT.sub(" ", s.lower())
    s = _SPACED_HYPHEN.sub("-", s)
    s = re.sub(r"\s+", " ", s).strip(" .-").lstrip("&+ ")
    return _LEADING.sub("", s).strip(" .-").lstrip("&+ ")


def clean_surface(text: str) -> str:
    """A display name: single spaces, no quotes, slashes or stray punctuation at the ends, spaced hyphens
    joined, no leading article or trailing possessive."""
    s = unicodedata.normalize("NFKC", text)
    s = _edges(re.sub(r"\s+", " ", s))
    s = _SPACED_HYPHEN.sub("-", s)
    s = _edges(re.sub(r"['’]s$", "", s))
    if s.count("(") != s.count(")"):
        s = _edges(s.replace("(", " ").replace(")", " "))
    return _edges(_LEADING.sub("", s))


def _edges(s: str) -> str:
    return re.sub(r"\s+", " ", s.strip(_EDGE_JUNK).lstrip("+(")).strip()


@lru_cache(maxsize=1)
def _stop_words() -> frozenset[str]:
    try:
        from spacy.lang.en.stop_words import STOP_WORDS
    except ImportError:  # pragma: no cover - spaCy is a dependency of the server parts
        return frozenset()
    return frozenset(STOP_WORDS)


def is_junk(key: str) -> bool:
    """A normalised name that names nothing: no letters, or only function words ("the", "was and")."""
    words = key.split()
    if not words or not any(ch.isalpha() for ch in key):
        return True
    stop = _stop_words()
    return all(w in stop or len(w) < 2 for w in words)
