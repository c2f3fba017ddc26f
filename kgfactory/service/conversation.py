"""Multi-turn chat: the earlier turns resolve the follow-up, and system messages reach the answer as operator
instructions. Once here, so the OpenAI-compatible route and the SDK resolve a conversation the same way.

A follow-up ("Where is it headquartered?") names nothing on its own, so retrieval on it alone finds whatever is
headquartered somewhere. With an LLM configured, the condense-question step (llm/condense.py, its own versioned
prompt) rewrites it as a standalone question from the earlier turns. Without one (or when that LLM call fails),
the entities the retriever links for the previous user question are carried into the follow-up's retrieval:
cheap, and it needs nothing of the corpus.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Literal, Sequence

from ..errors import InvalidParameterError, LLMBudgetError, LLMError
from . import limits as L
from .asking import AnswerStream, Asking, search_result, with_usage
from .results import AskResult

log = logging.getLogger(__name__)
ROLES = ("system", "developer", "user", "assistant")
INSTRUCTION_ROLES = ("system", "developer")  # OpenAI's newer name for the operator's messages


@dataclass(frozen=True)
class Turn:
    """One chat message as text: role is system, developer, user or assistant."""

    role: str
    text: str


@dataclass
class Resolved:
    """What a conversation asks: `question` is what retrieval and the answer run on; `how` says how the
    follow-up was resolved (`single`: one user turn; `llm`: condensed; `entities`: the previous question's
    entities carried; `unresolved`: earlier turns gave nothing to carry)."""

    question: str
    follow_up: str
    instructions: str | None = None
    how: Literal["single", "llm", "entities", "unresolved"] = "single"
    carried: list[str] = field(default_factory=list)
    usage: dict[str, int] | None = None  # tokens the condense step spent


def split_turns(turns: Sequence[Turn]) -> tuple[str | None, list[Turn], str]:
    """(operator instructions, earlier user/assistant turns, the last user message), checked and bounded."""
    if not isinstance(turns, (list, tuple)) or not 0 < len(turns) <= L.MAX_CHAT_MESSAGES:
        raise InvalidParameterError(f"messages: 1-{L.MAX_CHAT_MESSAGES} messages", "messages")
    for i, t in enumerate(turns):
        if t.role not in ROLES:
            raise InvalidParameterError(f"messages[{i}].role {t.role!r} is not supported (tools are not offered); "
                                        f"use one of {', '.join(ROLES)}", "messages")
        if len(t.text) > L.MAX_MESSAGE_CHARS:
            raise InvalidParameterError(f"messages[{i}]: at most {L.MAX_MESSAGE_CHARS} characters", "messages")
    last = next((i for i in range(len(turns) - 1, -1, -1) if turns[i].role == "user" and turns[i].text.strip()), None)
    if last is None:
        raise InvalidParameterError("messages hold no user message with text: the last user message is the question",
                                    "messages")
    system = "\n\n".join(t.text.strip() for t in turns if t.role in INSTRUCTION_ROLES and t.text.strip())
    if len(system) > L.MAX_INSTRUCTIONS_CHARS:
        raise InvalidParameterError(f"messages: the system messages hold {len(system)} characters; at most "
                                    f"{L.MAX_INSTRUCTIONS_CHARS} reach the answer as instructions", "messages")
    history = [t for t in turns[:last] if t.role in ("user", "assistant") and t.text.strip()]
    return system or None, history, turns[last].text.strip()[: L.MAX_QUESTION_CHARS]


def _bounded(history: list[Turn]) -> list[tuple[str, str]]:
    """The latest earlier turns that fit the condense prompt's budget, oldest first."""
    out: list[tuple[str, str]] = []
    room = L.MAX_HISTORY_CHARS
    for t in reversed(history[-L.HISTORY_TURNS:]):
        text = " ".join(t.text.split())[: min(room, 1000)]
        if not text:
            break
        out.append((t.role, text))
        room -= len(text)
    return out[::-1]


class Chatting(Asking):
    """Asking plus conversations: a mixin of KnowledgeService."""

    def resolve(self, turns: Sequence[Turn], *, tags: Sequence[str] | None = None,
                doc_ids: Sequence[str] | None = None) -> Resolved:
        """The question a conversation asks, resolved from its earlier turns (see the module docstring)."""
        instructions, history, follow_up = split_turns(turns)
        r = Resolved(question=follow_up, follow_up=follow_up, instructions=instructions)
        if not history:
            return r
        llm = getattr(self.services, "llm", None)
        if llm is not None:
            from ..llm.condense import Condenser

            try:
                r.question, c = Condenser(llm, max_chars=L.MAX_QUESTION_CHARS).standalone(
                    _bounded(history), follow_up, self.tenant)
                r.how, r.usage = "llm", c.usage()
                return r
            except LLMBudgetError:
                raise
            except LLMError as e:  # the LLM is down: resolve the cheap way rather than not at all
                log.warning("condense-question step failed, carrying entities instead: %s", e)
        return self._carry_entities(r, history, tags, doc_ids)

    def _carry_entities(self, r: Resolved, history: list[Turn], tags: Sequence[str] | None,
                        doc_ids: Sequence[str] | None) -> Resolved:
        """The follow-up plus the names the retriever links for the latest earlier user question that names any."""
        asked = [t.text.strip()[: L.MAX_QUESTION_CHARS] for t in history if t.role == "user"]
        for prev in reversed(asked[-L.HISTORY_TURNS:]):
            seeds = self._retrieve(prev, "graph", L.MIN_TOP_K, tags, doc_ids).seeds
            low = r.follow_up.lower()
            names = [s.name for s in seeds if s.name and s.name.lower() not in low]
            names = list(dict.fromkeys(names))[: L.CARRIED_ENTITIES]
            if names:
                suffix = f" ({', '.join(names)})"
                r.question = r.follow_up[: L.MAX_QUESTION_CHARS - len(suffix)] + suffix
                r.how, r.carried = "entities", names
                return r
        r.how = "unresolved"
        return r

    def chat(self, turns: Sequence[Turn], *, mode: str = L.DEFAULT_MODE, top_k: int = L.DEFAULT_TOP_K,
             tags: Sequence[str] | None = None, doc_ids: Sequence[str] | None = None) -> AskResult:
        """Answer the last user message of a conversation; `question` on the result is the resolved one, and
        `usage` includes the condense step's tokens."""
        r = self.resolve(turns, tags=tags, doc_ids=doc_ids)
        result = self._retrieve(r.question, mode, top_k, tags, doc_ids)
        ans = self.services.answerer.answer(result, tenant=self.tenant, instructions=r.instructions)
        return self._answered(result, with_usage(ans, r.usage))

    def chat_stream(self, turns: Sequence[Turn], *, mode: str = L.DEFAULT_MODE, top_k: int = L.DEFAULT_TOP_K,
                    tags: Sequence[str] | None = None, doc_ids: Sequence[str] | None = None) -> AnswerStream:
        """As chat(), the text streamed (see ask_stream). Resolution and retrieval run before the first piece."""
        r = self.resolve(turns, tags=tags, doc_ids=doc_ids)
        result = self._retrieve(r.question, mode, top_k, tags, doc_ids)
        return AnswerStream(search_result(result), self._stream(result, r.instructions, r.usage))
