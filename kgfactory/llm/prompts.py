"""Versioned prompt templates: files under prompts/, `<name>_v<N>.txt`, with a [system] and a [user] section.

The version id recorded on answers and ingest runs is the file stem plus a hash of its text
("answer_v1@3f2a9c1b"), so an edit that forgot to bump the file name is still visible and a result can be
reproduced from the exact template. Placeholders are `{{name}}` (not str.format: JSON braces stay literal).
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ..errors import ConfigError

PROMPT_DIR = Path(__file__).resolve().parent / "prompts"
_SECTION = re.compile(r"^\[(system|user)\]\s*$", re.M)
_SLOT = re.compile(r"\{\{(\w+)\}\}")


@dataclass(frozen=True)
class Prompt:
    name: str
    version: str
    system: str
    user: str

    def messages(self, **values: str) -> list[dict[str, str]]:
        return [{"role": "system", "content": _fill(self.system, values)},
                {"role": "user", "content": _fill(self.user, values)}]


def _fill(template: str, values: dict[str, str]) -> str:
    def sub(m: re.Match) -> str:
        if m.group(1) not in values:
            raise ConfigError(f"prompt placeholder {{{{{m.group(1)}}}}} has no value")
        return str(values[m.group(1)])

    return _SLOT.sub(sub, template)


@lru_cache(maxsize=None)
def load_prompt(name: str) -> Prompt:
    """`name` is a file stem in prompts/ (e.g. 'answer_v1') or a path to a template file of your own."""
    path = Path(name) if name.endswith(".txt") else PROMPT_DIR / f"{name}.txt"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"prompt template {path} cannot be read: {e}") from e
    parts = _SECTION.split(text)
    sections = dict(zip(parts[1::2], (p.strip() for p in parts[2::2])))
    if "user" not in sections:
        raise ConfigError(f"prompt template {path} has no [user] section")
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]
    return Prompt(name=path.stem, version=f"{path.stem}@{digest}", system=sections.get("system", ""),
                  user=sections["user"])
