"""The condense-question step of a multi-turn chat: the LLM rewrites the follow-up ("Where is it
headquartered?") as a standalone question ("Where is Helios Robotics headquartered?") from the earlier turns,
and retrieval runs on that. The prompt is versioned like the answer prompts (prompts/condense_v1.txt)."""
from __future__ import annotations

import re

from ..ports import LLM
from ..types import Completion
from .prompts import Prompt, load_prompt

CONDENSE_PROMPT = "condense_v1"
_LABEL = re.compile(r"^\s*(standalone question|question|rewritten question)\s*:\s*", re.I)


class Condenser:
    """`standalone(history, follow_up)` -> (question, Completion). Raises the LLM port's errors (the caller
    decides the fallback); the reply is cleaned to one line, and the follow-up itself is kept when the model
    answers with nothing usable."""

    def __init__(self, llm: LLM, prompt: Prompt | None = None, max_chars: int = 2000, max_tokens: int = 128):
        self.llm = llm
        self.prompt = prompt or load_prompt(CONDENSE_PROMPT)
        self.max_chars, self.max_tokens = max_chars, max_tokens

    def messages(self, history: list[tuple[str, str]], follow_up: str) -> list[dict[str, str]]:
        lines = [f"{'User' if role == 'user' else 'Assistant'}: {' '.join(text.split())}" for role, text in history]
        return self.prompt.messages(history="\n".join(lines), question=" ".join(follow_up.split()))

    def standalone(self, history: list[tuple[str, str]], follow_up: str, tenant: str) -> tuple[str, Completion]:
        c = self.llm.complete(self.messages(history, follow_up), tenant=tenant, max_tokens=self.max_tokens,
                              temperature=0.0)
        return clean(c.text, follow_up, self.max_chars), c


def clean(text: str, follow_up: str, max_chars: int) -> str:
    """The first non-empty line, without a 'Standalone question:' label or quotes; the follow-up when empty."""
    line = next((ln.strip() for ln in (text or "").splitlines() if ln.strip()), "")
    line = _LABEL.sub("", line).strip().strip('"\u201c\u201d\'`').strip()
    return line[:max_chars] if line else follow_up
