"""Name normalisation shared by extraction (to merge entities) and retrieval (to find them in a question)."""
from __future__ import annotations

import re
import unicodedata

_LEADING = re.compile(r"^(the|a|an|this|that|these|those|his|her|its|their|our|my|your)\s+", re.IGNORECASE)
_PUNCT = re.compile(r"[^\w\s&+.-]")


def normalise(name: str) -> str:
    """Key that merges spelling variants: NFKC, lower case, no leading article, no possessive, single spaces."""
    s = unicodedata.normalize("NFKC", name).strip()
    s = re.sub(r"['’]s$", "", s)
    s = _LEADING.sub("", s)
    s = _PUNCT.sub(" ", s.lower())
    return re.sub(r"\s+", " ", s).strip(" .-")


def clean_surface(text: str) -> str:
    s = re.sub(r"\s+", " ", text).strip()
    s = re.sub(r"['’]s$", "", s)
    return _LEADING.sub("", s).strip()
